"""Compiles the jit path's train step and the evaluation embedding; prints what each device runs, as JSON.

``compiled_facts`` runs in tests/jit_parity_script.py's process (8 simulated devices, set
before JAX starts); ``python tests/jit_compiled_script.py`` prints them alone. Reads the
compiled (SPMD-partitioned, per-device) HLO text: the batch size of the
encoder's convolutions and the shapes the collectives move.
"""

import functools
import json
import re

import jax
import numpy as np

from scfa_jax.bench import train_step as bench
from scfa_jax.training import parallel
from scfa_jax.training import steps

GLOBAL_VIDEOS = 8
IMAGE_SIZE = 32
_SHAPE = r'(\w+)\[([\d,]*)\]'


def summarize(hlo: str) -> dict:
  """Per-device facts of one compiled module: the forward convolutions' batch sizes and the collectives' shapes.

  Forward convolutions are told from the backward ones by their source op name
  (present, without ``transpose(``; XLA's weight-gradient convolutions carry none).
  """
  conv_batches, gathered, reduced = set(), [], []
  for line in hlo.splitlines():
    if '=' not in line:
      continue
    op = line.split('=', 1)[1]
    if re.search(r'\bconvolution\(', op) and 'op_name=' in op and 'transpose(' not in op:
      conv_batches.add(int(re.match(r'\s*\w+\[(\d+)', op).group(1)))
    kind = re.search(r'\b(all-gather|all-to-all|collective-permute|all-reduce)(-start)?\(', op)
    if kind:
      shapes = [(t, [int(d) for d in dims.split(',') if d]) for t, dims in re.findall(_SHAPE, op[:kind.start()])]
      (reduced if kind.group(1) == 'all-reduce' else gathered).extend(shapes)
  return {'conv_batches': sorted(conv_batches), 'moved': gathered, 'all_reduced': reduced}


def compiled_facts() -> dict:
  """What each device runs in the compiled jit train step and the (pmap) evaluation embedding."""
  devices = jax.device_count()
  config = bench.bench_config(10, 4, 'float32', 'jit')
  dp, step, state = bench.build_step(config, IMAGE_SIZE)
  batch = dp.shard_batch(bench.random_batch(GLOBAL_VIDEOS, IMAGE_SIZE))
  train = summarize(step.lower(state, batch).compile().as_text())

  # Evaluation (and fine-tuning) run on the pmap path whatever train.parallelism says.
  embed = parallel.pmap_step(functools.partial(steps.embed_step, preprocessing_mode='imagenet'), donate_state=False)
  images = np.zeros((devices, 2 * GLOBAL_VIDEOS // devices, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
  host_state = jax.device_get(state)
  evaluation = summarize(embed.lower(host_state, {'image': images}).compile().as_text())
  return {'devices': devices, 'global_grids': 2 * GLOBAL_VIDEOS,
          'stem_kernel': list(np.shape(host_state.params['encoder']['stem_conv']['kernel'])),
          'train': train, 'embed': evaluation}


def main():
  print(json.dumps(compiled_facts()))


if __name__ == '__main__':
  main()
