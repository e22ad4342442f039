"""Where the training step's time goes: XLA ops of the real step, grouped, from a profiler trace.

``python -m scfa_jax.bench profile`` builds the same step as ``bench
train_step`` (same --depth, --image_size, --batch, --dtype, --parallel flags),
runs it, then traces ``--steps`` steps with ``jax.profiler`` and sums the
duration of every XLA op event by kind (the op name without its number:
``ynn_fusion``, ``transpose_copy_fusion``, ``convolution`` ...) and by
direction (forward or backward, read from the op's HLO metadata). It also
reports how many cores the step kept busy (process CPU time over wall time).

This is how the CPU step's two expensive layouts were found (see
docs/performance.md): the table points at the ops, the HLO names the layer.
On CPU the op events are the XLA thunks (traced with
``--xla_cpu_enable_xprof_traceme``, set by the command); on a GPU they are the
device's "XLA Ops" line. An op that spreads over the CPU thread pool shows
once with its wall time, so the sums are wall time per step, not CPU time.
"""

from __future__ import annotations

import collections
import glob
import re
import resource
import tempfile
import time
from typing import Any, Iterator

import jax

TRACE_FLAG = '--xla_cpu_enable_xprof_traceme=true'
# Events that wrap or wait for ops rather than being one.
_NOT_OPS = ('ThunkExecutor', 'SlinkyThreadPool', 'Thunk::', 'PjRt', '$')


def op_kind(name: str) -> str:
  """``transpose_copy_fusion.108`` -> ``transpose_copy_fusion``."""
  return re.sub(r'\.\d+$', '', name)


def hlo_directions(hlo_text: str) -> dict[str, str]:
  """Op name -> 'forward' | 'backward' | '' from the optimised HLO's ``op_name`` metadata.

  JAX names backward ops ``transpose(jvp(...))``; forward ones ``jvp(...)``.
  """
  directions = {}
  for match in re.finditer(r'^\s*(?:ROOT )?%(\S+) = .*$', hlo_text, re.M):
    op_name = re.search(r'op_name="([^"]*)"', match.group(0))
    if not op_name:
      directions[match.group(1)] = ''
    else:
      directions[match.group(1)] = 'backward' if 'transpose(' in op_name.group(1) else 'forward'
  return directions


def op_events(profile: Any) -> Iterator[tuple[str, int]]:
  """(op name, duration in ns) of every XLA op event in a ``jax.profiler.ProfileData``."""
  for plane in profile.planes:
    for line in plane.lines:
      on_cpu = plane.name == '/host:CPU' and ('XLA' in line.name)
      on_device = plane.name.startswith('/device:') and line.name == 'XLA Ops'
      if not (on_cpu or on_device):
        continue
      for event in line.events:
        if not event.name.startswith(_NOT_OPS):
          yield event.name, event.duration_ns


def summarize(events: Iterator[tuple[str, int]], directions: dict[str, str], num_steps: int,
              top: int = 15) -> dict[str, Any]:
  """Per-step milliseconds by (kind, direction) and for the single most expensive ops."""
  by_kind: collections.Counter = collections.Counter()
  by_op: collections.Counter = collections.Counter()
  for name, duration in events:
    by_kind[(op_kind(name), directions.get(name, ''))] += duration
    by_op[name] += duration
  total = sum(by_kind.values()) or 1
  per_step = lambda ns: round(ns / num_steps / 1e6, 1)
  return {
      'op_ms_per_step': per_step(total),
      'by_kind': [{'kind': kind, 'direction': direction, 'ms_per_step': per_step(ns),
                   'percent': round(100 * ns / total, 1)} for (kind, direction), ns in by_kind.most_common(top)],
      'top_ops': [{'op': name, 'direction': directions.get(name, ''), 'ms_per_step': per_step(ns)}
                  for name, ns in by_op.most_common(top)],
  }


def run(num_steps: int) -> dict[str, Any]:
  """Profiles the step described by the ``bench train_step`` flags; returns the JSON-able results."""
  # Imported here: train_step defines absl flags at import, which the parsing helpers above must not need.
  from scfa_jax.bench import train_step  # pylint: disable=g-import-not-at-top
  flag = train_step.flags.FLAGS
  config = train_step.bench_config(flag.depth, flag.width, flag.dtype, flag.parallel)
  dp, jitted_step, state = train_step.build_step(config, flag.image_size)
  batch = dp.shard_batch(train_step.random_batch(flag.batch, flag.image_size))
  step = jitted_step.lower(state, batch).compile()  # compiled once: the steps below run this executable
  directions = hlo_directions(step.as_text())
  for _ in range(2):  # two warm steps
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)

  usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
  for _ in range(num_steps):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  wall = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_SELF)
  cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime

  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    for _ in range(num_steps):
      state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    jax.profiler.stop_trace()
    traces = sorted(glob.glob(f'{trace_dir}/**/*.xplane.pb', recursive=True))
    if not traces:
      raise RuntimeError(f'jax.profiler wrote no trace in {trace_dir}.')
    profile = jax.profiler.ProfileData.from_file(traces[-1])
    summary = summarize(op_events(profile), directions, num_steps)
  return {
      'bench': 'profile', 'backend': jax.default_backend(), 'device_kind': jax.devices()[0].device_kind,
      'depth': flag.depth, 'image_size': flag.image_size, 'batch_videos': flag.batch, 'dtype': flag.dtype,
      'parallel': flag.parallel, 'step_s': round(wall / num_steps, 3),
      'cores_busy': round(cpu / wall, 2) if jax.default_backend() == 'cpu' else None,
      'load_avg_1m': train_step.load(), **summary,
  }


def format_table(results: dict[str, Any]) -> str:
  """The by-kind table, for the console."""
  lines = [f"step {results['step_s']} s; op time {results['op_ms_per_step']} ms/step; "
           f"cores busy {results['cores_busy']}",
           f"{'ms/step':>9} {'%':>6}  direction  kind"]
  for row in results['by_kind']:
    lines.append(f"{row['ms_per_step']:9.1f} {row['percent']:6.1f}  {row['direction'] or '-':9}  {row['kind']}")
  return '\n'.join(lines)
