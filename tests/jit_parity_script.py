"""Runs SCFA train steps through the pmap path and the jit (mesh + NamedSharding) path; prints JSON.

Run by tests/test_jit_parallel.py with XLA_FLAGS=--xla_force_host_platform_device_count=8
(the flag must be set before JAX starts, hence a separate process). Both paths also train a
model of fused multi-scale samples (2 pathways, separate ResNets, attention fusion, per-pathway
auxiliary SupCon terms) self-supervised (instance contrast, ``loss.positives='video'``, with a memory
queue and a momentum key encoder), keys ``fused_*``, and so does one device on the whole global batch (``fused_*_one``: 8 devices =
1 device, which a per-device video index as the instance label would break).
"""

import functools
import json
import sys

import jax
import numpy as np

from scfa_jax import config as base_config
from scfa_jax.models import scfa
from scfa_jax.training import data_parallel
from scfa_jax.training import loop
from scfa_jax.training import memory_queue
from scfa_jax.training import momentum
from scfa_jax.training import steps
from scfa_jax.training import train

NUM_STEPS = 3
QUEUE_SIZE = 200  # float32 runs push every view of the 3 steps' global batches into a SupCon memory queue


def run_path(parallelism: str, dtype: str, batch: dict, one_device: bool = False, queue: bool = False,
             instance: bool = False, key_encoder: bool = False) -> dict:
  config = base_config.get_config()
  config.loss.positives = 'video' if instance else 'label'
  config.model.update(depth=10, width=4, proj_hidden_dim=16, proj_dim=8, sync_batch_norm=True, dtype=dtype,
                      fusion='attention', separate_pathways=True)
  dp = data_parallel.select(parallelism)
  pathways = batch['views'].shape[2] if batch['views'].ndim == 6 else 0  # [B, V, P, H, W, 3]: fused samples
  config.loss.pathway_aux_weight = 0.5 if pathways else 0.0
  model = scfa.create_model(config.model, axis_name=dp.axis_name, num_pathways=pathways, pathway_heads=tuple(range(pathways)))
  schedule = loop.learning_rate_schedule(config.optim, steps_per_epoch=1, total_steps=10)
  host_state = train.create_train_state(jax.random.key(0), model, batch['views'].shape[2:],
                                        loop.create_optimizer(config.optim, schedule), config.model)
  if queue:
    host_state = host_state.replace(queue=memory_queue.init(QUEUE_SIZE, config.model.proj_dim))
  if key_encoder:  # a MoCo key encoder: the EMA of the parameters computes the keys and fills the queue
    host_state = host_state.replace(momentum_params=jax.tree.map(np.copy, host_state.params))
  step_fn = functools.partial(steps.train_step, loss_config=config.loss, preprocessing_mode='imagenet',
                              learning_rate_fn=schedule, axis_name=dp.axis_name,
                              momentum_fn=momentum.schedule(0.5, 'cosine', 10) if key_encoder else None)
  if one_device:  # the whole global batch on one device, through the pmap step function
    step = jax.pmap(step_fn, axis_name=dp.axis_name, in_axes=(None, 0), out_axes=None, devices=jax.devices()[:1])
    state, shard = host_state, lambda b: jax.tree.map(lambda x: x[None], b)
  else:
    step = dp.compile_step(step_fn, donate_state=True)
    state, shard = dp.replicate(host_state), dp.shard_batch
  first = state
  losses, grad_norms = [], []
  for _ in range(NUM_STEPS):
    state, metrics = step(state, shard(batch))
    losses.append(float(metrics['loss']))
    grad_norms.append(float(metrics['grad_norm']))
  out = {
      'state': jax.device_get(state), 'initial_params': host_state.params, 'losses': losses, 'grad_norms': grad_norms,
      'loss_dtype': str(metrics['loss'].dtype),
      'param_dtypes': sorted({str(x.dtype) for x in jax.tree.leaves(state.params)}),
      'donated': one_device or all(x.is_deleted() for x in jax.tree.leaves(first)),
  }
  if parallelism == 'jit' and not one_device:
    out['cache_size'] = step._cache_size()  # pylint: disable=protected-access  # one executable: no recompiles
    out['params_sharding_replicated'] = all(x.sharding.is_fully_replicated for x in jax.tree.leaves(state.params))
  return out


def max_diff(a, b) -> float:
  return float(max(np.max(np.abs(np.asarray(x, np.float32) - np.asarray(y, np.float32)))
                   for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))


def max_rel_diff(a, b) -> float:
  """The largest leaf difference relative to that leaf's largest magnitude (float32 sums in another order)."""
  return float(max(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))
                   / max(float(np.max(np.abs(np.asarray(y, np.float64)))), 1e-30)
                   for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)) if np.size(y)))


def fused_parity(dtype: str, rng: np.random.Generator, labels: np.ndarray) -> dict:
  """Fused samples [B, 2 samplings, 2 pathways, H, W, 3] on pmap, jit and one device."""
  batch = {'views': rng.integers(0, 256, size=(len(labels), 2, 2, 16, 16, 3), dtype=np.uint8), 'label': labels}
  ssl = functools.partial(run_path, dtype=dtype, batch=batch, queue=True, instance=True, key_encoder=True)
  p, j, one = ssl('pmap'), ssl('jit'), ssl('pmap', one_device=True)
  return {
      'fused_losses_pmap': p['losses'], 'fused_losses_jit': j['losses'], 'fused_losses_one': one['losses'],
      'fused_params_max_abs_diff_one': max_diff(p['state'].params, one['state'].params),
      'fused_batch_stats_max_abs_diff_one': max_diff(p['state'].batch_stats, one['state'].batch_stats),
      'fused_params_max_abs_diff': max_diff(p['state'].params, j['state'].params),
      'fused_batch_stats_max_abs_diff': max_diff(p['state'].batch_stats, j['state'].batch_stats),
      'fused_params_moved': max_diff(j['state'].params, j['initial_params']),
      'fused_queue_max_abs_diff_one': max_diff(p['state'].queue, one['state'].queue),
      'fused_momentum_max_abs_diff_one': max_diff(p['state'].momentum_params, one['state'].momentum_params),
      'fused_momentum_max_abs_diff': max_diff(p['state'].momentum_params, j['state'].momentum_params),
      'fused_momentum_moved': max_diff(j['state'].momentum_params, j['initial_params']),
  }


def self_supervised_bfloat16(batch: dict) -> dict:
  """Instance contrast with a queue and a momentum key encoder in bfloat16 against float32 (jit path)."""
  ssl = functools.partial(run_path, 'jit', batch=batch, queue=True, instance=True, key_encoder=True)
  half, full = ssl('bfloat16'), ssl('float32')
  state = half['state']
  return {
      'ssl_losses_bfloat16': half['losses'], 'ssl_losses_float32': full['losses'],
      'ssl_state_dtypes': sorted({str(x.dtype) for x in jax.tree.leaves((state.params, state.momentum_params,
                                                                           state.queue['projections']))}),
      'ssl_momentum_moved': max_diff(state.momentum_params, half['initial_params']),
      'ssl_queue_filled': int(np.asarray(state.queue['valid']).sum()),
  }


def main():
  dtype = sys.argv[1] if len(sys.argv) > 1 else 'float32'
  rng = np.random.default_rng(0)
  global_batch = 2 * jax.local_device_count()
  batch = {
      'views': rng.integers(0, 256, size=(global_batch, 2, 32, 32, 3), dtype=np.uint8),
      'label': rng.integers(0, 3, size=(global_batch,)).astype(np.int32),
  }
  p = run_path('pmap', dtype, batch, queue=dtype == 'float32')
  j = run_path('jit', dtype, batch, queue=dtype == 'float32')
  print(json.dumps({**(fused_parity(dtype, rng, batch['label']) if dtype == 'float32' else
                       self_supervised_bfloat16(batch)),
      'num_devices': jax.device_count(),
      'dtype': dtype,
      'losses_pmap': p['losses'], 'losses_jit': j['losses'],
      'grad_norms_pmap': p['grad_norms'], 'grad_norms_jit': j['grad_norms'],
      'params_max_abs_diff': max_diff(p['state'].params, j['state'].params),
      'batch_stats_max_abs_diff': max_diff(p['state'].batch_stats, j['state'].batch_stats),
      'opt_state_max_abs_diff': max_diff(p['state'].opt_state, j['state'].opt_state),
      'opt_state_max_rel_diff': max_rel_diff(p['state'].opt_state, j['state'].opt_state),
      'params_moved': max_diff(j['state'].params, j['initial_params']),
      'loss_dtypes': [p['loss_dtype'], j['loss_dtype']],
      'param_dtypes': sorted(set(p['param_dtypes']) | set(j['param_dtypes'])),
      'donated': [p['donated'], j['donated']],
      'jit_cache_size': j['cache_size'],
      'jit_params_replicated': j['params_sharding_replicated'],
      **({'queue_filled': int(np.asarray(j['state'].queue['valid']).sum()),
          'queue_max_abs_diff': max_diff(p['state'].queue, j['state'].queue)} if dtype == 'float32' else {}),
  }))


if __name__ == '__main__':
  main()
