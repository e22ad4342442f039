"""The training-step benchmark: SCFA's JAX step against the same step in PyTorch, side by side.

One full step is 2 views per video stacked into one batch of grids, the
ResNet forward, the projection head, SupCon over the global batch, the
backward pass and the Adam update, exactly as ``training.train`` runs it
(``steps.train_step`` through ``config.train.parallelism``'s path, state
donated). The PyTorch reference (``bench.torch_reference``) is timed in the
same run just before, on the same batch shape, in a child process (its
triton import clashes with jaxlib's LLVM in one process, and on a GPU JAX
would hold the memory), so the ratio is taken minutes apart, not days; the
1-minute load average is recorded before and after each side.

Figures (one JSON line, see ``run``): medians of ``--steps`` timed steps after
``--warmup`` untimed ones; ``compile_s`` is tracing + lowering + XLA compile
of the first step; ``recompiles`` counts XLA compilations of any function
after the first step (0 expected: a changing shape or a Python scalar in the
state would show here); ``state_donated``: the step consumed its input state,
so one copy lives on the devices.
"""

from __future__ import annotations

import functools
import os
import resource
import statistics
import sys
import time
from typing import Any, Callable, Optional

from absl import flags
import jax
import numpy as np

from scfa_jax import config as base_config
from scfa_jax.bench import end_to_end
from scfa_jax.bench import flops as flops_lib
from scfa_jax.bench import harness
from scfa_jax.models import scfa
from scfa_jax.training import data_parallel
from scfa_jax.training import loop
from scfa_jax.training import steps
from scfa_jax.training import initial_state

_DEPTH = flags.DEFINE_integer('depth', 50, 'ResNet depth (10, 18, 34, 50, 101, 152).')
_WIDTH = flags.DEFINE_integer('width', 64, 'Filters of the first ResNet stage (64 = standard).')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 224, 'Grid image side in px (224 = 4x4 tiles of 56 px).')
_BATCH = flags.DEFINE_integer('batch', 8, 'Videos per step (global); each gives 2 grids.')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'], 'Compute dtype (parameters stay float32).')
_PARALLEL = flags.DEFINE_enum('parallel', 'pmap', list(data_parallel.CHOICES), 'config.train.parallelism.')
_STEPS = flags.DEFINE_integer('steps', 6, 'Timed steps per framework.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed steps after the first (compiling) one.')
_TORCH = flags.DEFINE_bool('torch', True, 'Also time the PyTorch reference step.')
_END_TO_END = flags.DEFINE_bool('end_to_end', False, 'Also run the real input pipeline into the real training loop '
                                '(bench.end_to_end; the pipeline flags --clips, --tile_size, --grid apply).')
_CHANNELS_LAST = flags.DEFINE_bool('channels_last', True, 'PyTorch reference in channels-last memory format.')

COMPILE_EVENTS = ('/jax/core/compile/jaxpr_trace_duration', '/jax/core/compile/jaxpr_to_mlir_module_duration',
                  '/jax/core/compile/backend_compile_duration')


class CompileCounter:
  """Counts XLA compilations (and their seconds) through jax.monitoring, from the moment it is made."""

  def __init__(self):
    self.compiles = 0
    self.seconds = 0.0
    jax.monitoring.register_event_duration_secs_listener(self._on_event)

  def _on_event(self, event: str, duration: float, **_: Any) -> None:
    if event in COMPILE_EVENTS:
      self.seconds += duration
      self.compiles += event == COMPILE_EVENTS[-1]


def load() -> float:
  return round(os.getloadavg()[0], 2)


def random_batch(batch: int, image_size: int, seed: int = 0) -> dict[str, np.ndarray]:
  """uint8 views [B, 2, S, S, 3] and labels with repeats (SupCon needs same-class pairs across videos)."""
  rng = np.random.default_rng(seed)
  return {
      'views': rng.integers(0, 256, size=(batch, 2, image_size, image_size, 3), dtype=np.uint8),
      'label': rng.integers(0, max(batch // 2, 1), size=(batch,)).astype(np.int32),
  }


def bench_config(depth: int, width: int, dtype: str, parallelism: str):
  config = base_config.get_config()
  config.model.update(depth=depth, width=width, dtype=dtype)
  config.train.parallelism = parallelism
  return config


def _peak_mem_mb() -> tuple[float, str]:
  stats = jax.local_devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return round(stats['peak_bytes_in_use'] / 2**20, 1), 'device'
  return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), 'process_rss'


def _tree_bytes(tree: Any) -> int:
  return sum(x.nbytes for x in jax.tree.leaves(tree))


def build_step(config, image_size: int) -> tuple[data_parallel.DataParallel, Callable[..., Any], Any]:
  """The real train step of ``config`` (state donated) and its initial state on the devices."""
  dp = data_parallel.select(config.train.parallelism)
  model = scfa.create_model(config.model, axis_name=dp.axis_name)
  schedule = loop.learning_rate_schedule(config.optim, steps_per_epoch=100, total_steps=10_000)
  host_state = initial_state.create_train_state(jax.random.key(0), model, (image_size, image_size, 3),
                                        loop.create_optimizer(config.optim, schedule), config.model)
  step_fn = functools.partial(steps.train_step, loss_config=config.loss, preprocessing_mode='imagenet',
                              learning_rate_fn=schedule, axis_name=dp.axis_name)
  return dp, dp.compile_step(step_fn, donate_state=True), dp.replicate(host_state)


def time_jax(config, *, batch: int, image_size: int, warmup: int, num_steps: int) -> dict[str, Any]:
  """Builds the real train step for ``config``, compiles it and times it."""
  dp, step, state = build_step(config, image_size)
  device_batch = dp.shard_batch(random_batch(batch, image_size))
  jax.block_until_ready((state, device_batch))
  flops = _step_flops(step, state, device_batch, dp.name)

  counter = CompileCounter()
  start = time.perf_counter()
  first_state = state
  state, metrics = step(state, device_batch)
  jax.block_until_ready((state, metrics))
  first_step_s = time.perf_counter() - start
  compile_s, first_compiles = counter.seconds, counter.compiles
  donated = all(x.is_deleted() for x in jax.tree.leaves(first_state))
  del first_state
  for _ in range(warmup):
    state, metrics = step(state, device_batch)
  jax.block_until_ready((state, metrics))
  times = []
  for _ in range(num_steps):
    start = time.perf_counter()
    state, metrics = step(state, device_batch)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - start)
  live = sum(x.nbytes for x in jax.live_arrays()) - _tree_bytes(device_batch) - _tree_bytes(metrics)
  peak_mem, peak_mem_source = _peak_mem_mb()
  return {
      'times': times,
      'first_step_s': round(first_step_s, 2),
      'compile_s': round(compile_s, 2),
      'compiles_first_step': first_compiles,
      'recompiles': counter.compiles - first_compiles,
      'state_donated': donated,
      'state_mb': round(_tree_bytes(state) / 2**20, 1),
      # Live device bytes beside the batch and metrics, in units of one state: 1.0 = no stray copy.
      'state_copies': round(live / max(_tree_bytes(state), 1), 2),
      'peak_mem_mb': peak_mem,
      'peak_mem_source': peak_mem_source,
      'flops_per_step': flops,
      'loss': float(metrics['loss']),
  }


def _step_flops(step: Any, state: Any, batch: Any, parallelism: str) -> Optional[float]:
  """FLOPs of one global step from XLA's cost analysis of the lowered program (no second compile)."""
  try:
    cost = step.lower(state, batch).cost_analysis()
  except Exception:  # pylint: disable=broad-except  # cost analysis is best effort on some backends
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  if not cost or 'flops' not in cost:
    return None
  # pmap lowers the per-device program; jit lowers the global one.
  return float(cost['flops']) * (jax.local_device_count() if parallelism == 'pmap' else 1)


def time_torch(**kwargs: Any) -> Optional[dict[str, Any]]:
  """The PyTorch reference step's times (``bench.torch_reference`` in a child process), or None with a
  one-line hint when torch is not installed."""
  result = harness.torch_child('scfa_jax.bench.torch_reference', kwargs)
  if result is None:
    print(f'{harness.TORCH_MISSING}, so the reference step is not timed (torch_* and ratio are null)', file=sys.stderr)
  return result


def run() -> dict[str, Any]:
  """Times both steps as the flags say; returns the JSON-able results."""
  config = bench_config(_DEPTH.value, _WIDTH.value, _DTYPE.value, _PARALLEL.value)
  load_before_torch = load()
  t = None
  if _TORCH.value:
    # PyTorch first, before JAX starts its backend: on a GPU, JAX would hold most of its memory.
    t = time_torch(depth=_DEPTH.value, width=_WIDTH.value, batch=_BATCH.value, image_size=_IMAGE_SIZE.value,
                   dtype=_DTYPE.value, channels_last=_CHANNELS_LAST.value, device='auto',
                   warmup=_WARMUP.value + 1, steps=_STEPS.value)
  device = jax.devices()[0]
  results: dict[str, Any] = {
      'bench': 'train_step', 'backend': jax.default_backend(), 'device_kind': device.device_kind,
      'num_devices': jax.device_count(), 'cpu_count': os.cpu_count(), 'depth': _DEPTH.value,
      'image_size': _IMAGE_SIZE.value, 'batch_videos': _BATCH.value, 'grids_per_step': 2 * _BATCH.value,
      'dtype': _DTYPE.value, 'parallel': _PARALLEL.value, 'xla_flags': os.environ.get('XLA_FLAGS', ''),
      'load_avg_1m_start': load_before_torch, 'load_avg_1m_after_torch': load(),
  }
  grids = 2 * _BATCH.value
  j = time_jax(config, batch=_BATCH.value, image_size=_IMAGE_SIZE.value, warmup=_WARMUP.value,
               num_steps=_STEPS.value)
  jax_step_s = statistics.median(j.pop('times'))
  flops = j.pop('flops_per_step')
  results.update(jax_step_s=round(jax_step_s, 4), jax_grids_per_s=round(grids / jax_step_s, 2), **j)
  results['model_gflop_per_step'] = round(flops / 1e9, 3) if flops else None
  results['achieved_tflop_per_s'] = round(flops / jax_step_s / 1e12, 3) if flops else None
  results['mfu'] = flops_lib.mfu(flops, jax_step_s, device.device_kind, _DTYPE.value, jax.device_count())
  results['load_avg_1m_after_jax'] = load()
  torch_step_s = statistics.median(t.pop('times')) if t else None
  results.update(t or {})
  results['torch_step_s'] = round(torch_step_s, 4) if torch_step_s else None
  results['torch_grids_per_s'] = round(grids / torch_step_s, 2) if torch_step_s else None
  results['ratio'] = round(jax_step_s / torch_step_s, 3) if torch_step_s else None
  if _END_TO_END.value:
    results.update(end_to_end.run(config, build_step, batch=_BATCH.value))
  results['load_avg_1m_end'] = load()
  return results
