"""Runs two SCFA train steps on all local devices and on one device; prints the differences as JSON.

Run by tests/test_parallel.py with XLA_FLAGS=--xla_force_host_platform_device_count=8
(the flag must be set before JAX starts, hence a separate process). ``--queue_sizes=0,80``
runs once without a SupCon memory queue and once with an 80-entry one, in one process
(one start-up of JAX), and prints a JSON object per queue size, keyed by the size.
"""

import functools
import json
import sys

import jax
import numpy as np

from scfa_jax import config as base_config
from scfa_jax.models import scfa
from scfa_jax.training import parallel
from scfa_jax.training import steps
from scfa_jax.training import loop
from scfa_jax.training import memory_queue
from scfa_jax.training import initial_state


def parity(queue_size: int) -> dict:
  """8 devices against 1 on the same global batch, with a memory queue of ``queue_size`` entries (0: none)."""
  config = base_config.get_config()
  config.model.update(depth=10, width=4, proj_hidden_dim=16, proj_dim=8, sync_batch_norm=True)
  config.optim.learning_rate = 1e-4
  num_devices = jax.local_device_count()
  global_batch = 2 * num_devices
  rng = np.random.default_rng(0)
  batch = {
      'views': rng.integers(0, 256, size=(global_batch, 2, 32, 32, 3), dtype=np.uint8),
      'label': rng.integers(0, 3, size=(global_batch,)).astype(np.int32),
  }
  model = scfa.create_model(config.model, axis_name=parallel.AXIS)
  schedule = loop.learning_rate_schedule(config.optim, steps_per_epoch=1, total_steps=10)
  state = initial_state.create_train_state(jax.random.key(0), model, (32, 32, 3),
                                   loop.create_optimizer(config.optim, schedule), config.model)
  if queue_size:
    state = state.replace(queue=memory_queue.init(queue_size, config.model.proj_dim))
  step_fn = functools.partial(steps.train_step, loss_config=config.loss, preprocessing_mode='imagenet',
                              learning_rate_fn=schedule)

  # All devices, through the project's own data-parallel path.
  p_step = parallel.pmap_step(step_fn, donate_state=True)
  multi_state, multi_metrics = p_step(parallel.replicate(state), parallel.shard_batch(batch))
  multi_state, multi_metrics = p_step(multi_state, parallel.shard_batch(batch))

  # One device, the whole global batch.
  one = jax.pmap(step_fn, axis_name=parallel.AXIS, in_axes=(None, 0), out_axes=None, devices=jax.devices()[:1])
  single_batch = jax.tree.map(lambda x: x[None], batch)
  single_state, single_metrics = one(state, single_batch)
  single_state, single_metrics = one(single_state, single_batch)

  def max_diff(a, b):
    return float(max(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))
                     for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))

  queue = {}
  if queue_size:
    queue = {'queue_filled': int(np.asarray(single_state.queue['valid']).sum()),
             'queue_max_abs_diff': max_diff(multi_state.queue, single_state.queue)}
  return {
      **queue,
      'num_devices': num_devices,
      'params_max_abs_diff': max_diff(multi_state.params, single_state.params),
      'batch_stats_max_abs_diff': max_diff(multi_state.batch_stats, single_state.batch_stats),
      'params_moved': max_diff(multi_state.params, state.params),
      'loss_multi': float(multi_metrics['loss']),
      'loss_single': float(single_metrics['loss']),
      'grad_norm_multi': float(multi_metrics['grad_norm']),
      'grad_norm_single': float(single_metrics['grad_norm']),
  }


def main():
  sizes = next((a.split('=')[1] for a in sys.argv[1:] if a.startswith('--queue_sizes=')), '0')
  print(json.dumps({size: parity(int(size)) for size in sizes.split(',')}))


if __name__ == '__main__':
  main()
