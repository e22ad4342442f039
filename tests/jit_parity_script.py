"""Runs SCFA train steps through the pmap path and the jit (mesh + NamedSharding) path; prints JSON.

Run once by tests/test_jit_parallel.py with XLA_FLAGS=--xla_force_host_platform_device_count=8 (the
flag must be set before JAX starts, hence a separate process). One process computes every result, so
the tests pay for one JAX start-up and the runs share JAX's caches. Eight short training runs
(``NUM_STEPS`` steps each), the cheapest models that show each property:

``float32``:
  * label SupCon with a memory queue, pmap and jit: same losses, gradients, parameters, Adam moments,
    BatchNorm statistics and queue (order included); the jit step donates its state and compiles once.
  * fused multi-scale samples (2 pathways, separate ResNets, attention fusion, per-pathway auxiliary
    SupCon terms) self-supervised (instance contrast, ``loss.positives='video'``, memory queue, momentum
    key encoder), pmap and jit (``fused_*``): same losses, parameters, statistics and key encoder.
  * self-supervised (the same loss on plain two-view samples), pmap on 8 devices and one device on the
    whole global batch (``ssl_*``): 8 devices = 1 device, which a per-device video index as the instance
    label (or anything else that splits the global batch's contrast per device) would break.

``bfloat16``: the plain self-supervised model in bfloat16 on pmap and on jit (``ssl_*``): float32 state,
losses that agree between the paths and follow the float32 pmap run above.

``compiled``: what each device runs in the compiled jit step (tests/jit_compiled_script.py).

``TIMINGS`` to stderr: each run's CPU seconds (all threads), for the test's ``slow`` mark.
"""

import functools
import json
import sys
import time

import jax
import numpy as np

from scfa_jax import config as base_config
from scfa_jax.models import scfa
from scfa_jax.training import data_parallel
from scfa_jax.training import initial_state
from scfa_jax.training import loop
from scfa_jax.training import memory_queue
from scfa_jax.training import momentum
from scfa_jax.training import steps

NUM_STEPS = 3
QUEUE_SIZE = 200  # every run with a queue pushes all views of the 3 steps' global batches (96) into it


def run_path(parallelism: str, dtype: str, batch: dict, one_device: bool = False, queue: bool = False,
             instance: bool = False, key_encoder: bool = False) -> dict:
  start = time.process_time()
  config = base_config.get_config()
  config.loss.positives = 'video' if instance else 'label'
  config.model.update(depth=10, width=4, proj_hidden_dim=16, proj_dim=8, sync_batch_norm=True, dtype=dtype,
                      fusion='attention', separate_pathways=True)
  dp = data_parallel.select(parallelism)
  pathways = batch['views'].shape[2] if batch['views'].ndim == 6 else 0  # [B, V, P, H, W, 3]: fused samples
  config.loss.pathway_aux_weight = 0.5 if pathways else 0.0
  model = scfa.create_model(config.model, axis_name=dp.axis_name, num_pathways=pathways, pathway_heads=tuple(range(pathways)))
  schedule = loop.learning_rate_schedule(config.optim, steps_per_epoch=1, total_steps=10)
  host_state = initial_state.create_train_state(jax.random.key(0), model, batch['views'].shape[2:],
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
  name = f"{'one' if one_device else parallelism} {dtype} {'ssl' if instance else 'label'} {batch['views'].ndim}d"
  print(f'TIMINGS {name}: {time.process_time() - start:.1f} s CPU', file=sys.stderr)
  return out


def max_diff(a, b) -> float:
  return float(max(np.max(np.abs(np.asarray(x, np.float32) - np.asarray(y, np.float32)))
                   for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))


def max_rel_diff(a, b) -> float:
  """The largest leaf difference relative to that leaf's largest magnitude (float32 sums in another order)."""
  return float(max(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))
                   / max(float(np.max(np.abs(np.asarray(y, np.float64)))), 1e-30)
                   for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)) if np.size(y)))


def label_supcon_parity(batch: dict) -> dict:
  """Label SupCon with a memory queue (float32), pmap against jit: the update and the jit step's contract."""
  p, j = (run_path(parallelism, 'float32', batch, queue=True) for parallelism in ('pmap', 'jit'))
  return {
      'losses_pmap': p['losses'], 'losses_jit': j['losses'],
      'grad_norms_pmap': p['grad_norms'], 'grad_norms_jit': j['grad_norms'],
      'params_max_abs_diff': max_diff(p['state'].params, j['state'].params),
      'batch_stats_max_abs_diff': max_diff(p['state'].batch_stats, j['state'].batch_stats),
      'opt_state_max_abs_diff': max_diff(p['state'].opt_state, j['state'].opt_state),
      'opt_state_max_rel_diff': max_rel_diff(p['state'].opt_state, j['state'].opt_state),
      'params_moved': max_diff(j['state'].params, j['initial_params']),
      'donated': [p['donated'], j['donated']],
      'jit_cache_size': j['cache_size'],
      'jit_params_replicated': j['params_sharding_replicated'],
      'queue_filled': int(np.asarray(j['state'].queue['valid']).sum()),
      'queue_max_abs_diff': max_diff(p['state'].queue, j['state'].queue),
  }


def fused_parity(rng: np.random.Generator, labels: np.ndarray) -> dict:
  """Fused samples [B, 2 samplings, 2 pathways, H, W, 3], self-supervised (float32), pmap against jit."""
  batch = {'views': rng.integers(0, 256, size=(len(labels), 2, 2, 16, 16, 3), dtype=np.uint8), 'label': labels}
  p, j = (run_path(parallelism, 'float32', batch, queue=True, instance=True, key_encoder=True)
          for parallelism in ('pmap', 'jit'))
  return {
      'fused_losses_pmap': p['losses'], 'fused_losses_jit': j['losses'],
      'fused_params_max_abs_diff': max_diff(p['state'].params, j['state'].params),
      'fused_batch_stats_max_abs_diff': max_diff(p['state'].batch_stats, j['state'].batch_stats),
      'fused_queue_max_abs_diff': max_diff(p['state'].queue, j['state'].queue),
      'fused_params_moved': max_diff(j['state'].params, j['initial_params']),
      'fused_momentum_max_abs_diff': max_diff(p['state'].momentum_params, j['state'].momentum_params),
      'fused_momentum_moved': max_diff(j['state'].momentum_params, j['initial_params']),
  }


def self_supervised(batch: dict) -> tuple[dict, dict]:
  """Plain two-view samples, self-supervised: float32 on 8 devices (pmap) and on one; bfloat16 on pmap and jit."""
  ssl = functools.partial(run_path, batch=batch, queue=True, instance=True, key_encoder=True)
  p, one = ssl('pmap', 'float32'), ssl('pmap', 'float32', one_device=True)
  half = {parallelism: ssl(parallelism, 'bfloat16') for parallelism in ('pmap', 'jit')}
  float32 = {
      'ssl_losses_pmap': p['losses'], 'ssl_losses_one': one['losses'],
      'ssl_params_max_abs_diff_one': max_diff(p['state'].params, one['state'].params),
      'ssl_batch_stats_max_abs_diff_one': max_diff(p['state'].batch_stats, one['state'].batch_stats),
      'ssl_queue_max_abs_diff_one': max_diff(p['state'].queue, one['state'].queue),
      'ssl_queue_filled': int(np.asarray(p['state'].queue['valid']).sum()),
      'ssl_momentum_max_abs_diff_one': max_diff(p['state'].momentum_params, one['state'].momentum_params),
      'ssl_momentum_moved': max_diff(p['state'].momentum_params, p['initial_params']),
  }
  bfloat16 = {
      'ssl_losses_float32': p['losses'],
      **{f'ssl_losses_{k}': r['losses'] for k, r in half.items()},
      'loss_dtypes': [half[k]['loss_dtype'] for k in ('pmap', 'jit')],
      'param_dtypes': sorted({d for r in half.values() for d in r['param_dtypes']}),
      # parameters, key encoder and queue of both paths
      'ssl_state_dtypes': sorted({str(x.dtype) for r in half.values() for x in jax.tree.leaves(
          (r['state'].params, r['state'].momentum_params, r['state'].queue['projections']))}),
      'params_moved': min(max_diff(r['state'].params, r['initial_params']) for r in half.values()),
      'ssl_momentum_moved': min(max_diff(r['state'].momentum_params, r['initial_params']) for r in half.values()),
      'ssl_queue_filled': [int(np.asarray(half[k]['state'].queue['valid']).sum()) for k in ('pmap', 'jit')],
  }
  return float32, bfloat16


def main():
  rng = np.random.default_rng(0)
  global_batch = 2 * jax.local_device_count()
  batch = {
      'views': rng.integers(0, 256, size=(global_batch, 2, 32, 32, 3), dtype=np.uint8),
      'label': rng.integers(0, 3, size=(global_batch,)).astype(np.int32),
  }
  ssl_float32, ssl_bfloat16 = self_supervised(batch)
  import jit_compiled_script  # pylint: disable=g-import-not-at-top  # beside this file (sys.path[0])
  print(json.dumps({
      'num_devices': jax.device_count(),
      'compiled': jit_compiled_script.compiled_facts(),
      'float32': {**label_supcon_parity(batch), **fused_parity(rng, batch['label']), **ssl_float32},
      'bfloat16': ssl_bfloat16,
  }))


if __name__ == '__main__':
  main()
