"""``train_step --end_to_end``: the real input pipeline feeding the real training loop.

A generated HMDB-like dataset (``bench.clips``, as the pipeline benchmark
builds it) goes through ``input_pipeline.create_train_dataset`` and the
configured path's ``prefetch_to_device`` into ``loop.fit`` with the real
train step. Two wrappers measure without changing what runs: one around the
host batch iterator (seconds the loop waited for the pipeline) and one around
the step (which waits for the step to finish, so that a wait is a wait for
data and not for the device's queue). Reported: grids per second delivered
over the steps after the compiling one, and the fraction of those steps that
waited for data longer than ``WAIT_FRACTION`` of the median step.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from typing import Any, Iterator

from absl import flags
import jax
import ml_collections
import numpy as np
import tensorflow as tf

from scfa_jax import startup
from scfa_jax.bench import clips
from scfa_jax.bench import pipeline
from scfa_jax.data import input_pipeline
from scfa_jax.training import checkpointing
from scfa_jax.training import loop

_E2E_STEPS = flags.DEFINE_integer('e2e_steps', 12, '--end_to_end: training steps run (the first compiles).')

WAIT_FRACTION = 0.05  # A step "waited for data" if the loop blocked on the pipeline this long (x median step).


class _Timed:
  """Iterator wrapper: seconds spent inside ``next`` of the wrapped host iterator, per batch."""

  def __init__(self, batches: Iterator[dict[str, np.ndarray]]):
    self.batches, self.waits = batches, []

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    start = time.perf_counter()
    batch = next(self.batches)
    self.waits.append(time.perf_counter() - start)
    return batch


def run(config: ml_collections.ConfigDict, build_step: Any, *, batch: int) -> dict[str, Any]:
  """Trains ``--e2e_steps`` steps on the generated dataset; returns throughput and data waits."""
  tf.config.set_visible_devices([], 'GPU')
  data_dir = flags.FLAGS.data_dir or tempfile.mkdtemp(prefix='scfa_e2e_')
  try:
    builder = clips.BenchClips(config=pipeline.clips_config(), data_dir=data_dir)
    builder.download_and_prepare()
    config.data = pipeline.data_config()
    image_size = config.data.grid_rows * config.data.tile_size
    dp, step, state = build_step(config, image_size)
    dataset = input_pipeline.create_train_dataset(builder, config.data, local_batch_size=batch // jax.process_count(),
                                                  seed=0)
    host = _Timed(dataset.as_numpy_iterator())
    step_times: list[float] = []
    step_ends: list[float] = []

    def timed_step(state, device_batch):
      start = time.perf_counter()
      out = jax.block_until_ready(step(state, device_batch))
      step_ends.append(time.perf_counter())
      step_times.append(step_ends[-1] - start)
      return out

    workdir = tempfile.mkdtemp(prefix='scfa_e2e_run_')
    manager = checkpointing.create_manager(workdir, ml_collections.ConfigDict({'max_to_keep': 1}))
    writer = startup.import_metric_writers().create_default_writer(workdir, just_logging=True)  # without Keras
    num_steps = _E2E_STEPS.value
    start = time.perf_counter()
    loop.fit(state, timed_step, dp.prefetch_to_device(host, config.data.prefetch_to_device), start_step=0,
             last_step=num_steps, grids_per_step=2 * batch, log_every_steps=num_steps, ckpt_every_steps=10**9,
             manager=manager, writer=writer, nan_hint='')
    total_s = time.perf_counter() - start
    manager.close()
    shutil.rmtree(workdir, ignore_errors=True)
  finally:
    if not flags.FLAGS.data_dir:
      shutil.rmtree(data_dir, ignore_errors=True)
  # prefetch_to_device pulls `prefetch` batches before step 1, then one before each later step: those
  # pulls are the loop's waits for data. Steps after the compiling first one count, end to end.
  measured = step_times[1:]
  waits = host.waits[config.data.prefetch_to_device:][:len(measured)]
  median_step = statistics.median(measured)
  wall = step_ends[-1] - step_ends[0]
  return {
      'e2e_steps_measured': len(measured),
      'e2e_grids_per_s': round(2 * batch * len(measured) / wall, 2),
      'e2e_step_s_median': round(median_step, 4),
      'e2e_data_wait_s_total': round(sum(waits), 3),
      'e2e_fraction_steps_waited': round(sum(w > WAIT_FRACTION * median_step for w in waits) / len(waits), 3),
      'e2e_wall_s': round(total_s, 1),
      'e2e_cpu_count': os.cpu_count(),
  }
