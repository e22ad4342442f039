r"""``python -m scfa_jax.bench pipeline [--flags]``: benchmarks, each printing one JSON line last.

  pipeline  The training input pipeline against the decode bound and the
            naive per-sample video loader, with memory (``bench.pipeline``).
  build     Only prepares the pipeline benchmark's data in --data_dir.
  train_step  One SCFA training step in JAX and the same step in PyTorch,
            side by side: step time, grids/s, compile, recompiles, memory,
            MFU on accelerators (``bench.train_step``).
  profile   Where that step's time goes: XLA ops grouped by kind and
            direction from a profiler trace (``bench.profile_step``).
  predict   videos/s of Predictor.embed (decode vs model) and of the exported
            SavedModel, demo model and ResNet-50 at 224 px (``bench.predict``).
  search    FAISS approximate search against exact search: recall@10, build
            time, memory, query latency per index size (``bench.search``).
  beam      Local build and embedding against Beam's DirectRunner on this
            machine (``bench.beam``).
  layers    Each distinct convolution of the ResNet (forward, input and
            weight gradient), JAX against PyTorch, totalled per step
            (``bench.layers``; --steps is the repeats per timing).

  python -m scfa_jax.bench pipeline --clips=240 --seconds=20
  python -m scfa_jax.bench train_step --depth=50 --image_size=224 --batch=8
  python -m scfa_jax.bench profile --depth=50 --image_size=224 --batch=8 --steps=2
  python -m scfa_jax.bench layers --depth=50 --image_size=224 --batch=8
  python -m scfa_jax.bench predict --predict_videos=8
  python -m scfa_jax.bench search --search_sizes=10000,100000 --search_dim=2048
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

from absl import app
from absl import logging

from scfa_jax import xla_cpu
from scfa_jax.bench import beam
from scfa_jax.bench import layers
from scfa_jax.bench import pipeline
from scfa_jax.bench import predict
from scfa_jax.bench import profile_step
from scfa_jax.bench import search
from scfa_jax.bench import train_step


def main(argv: Sequence[str]) -> None:
  commands = ('pipeline', 'build', 'train_step', 'profile', 'layers', 'predict', 'search', 'beam')
  if len(argv) != 2 or argv[1] not in commands:
    raise app.UsageError(f'Usage: python -m scfa_jax.bench {{{"|".join(commands)}}} [--flags]')
  logging.set_verbosity(logging.WARNING)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')  # tf.data only; keep the GPUs for JAX.
  if argv[1] == 'build':
    if not pipeline.flags.FLAGS.data_dir:
      raise app.UsageError('build needs --data_dir.')
    pipeline.build(pipeline.flags.FLAGS.data_dir)
    return
  if argv[1] == 'search':  # numpy and FAISS only: no JAX backend
    results = search.run()
    print(search.format_table(results), file=sys.stderr)
    print(json.dumps(results), flush=True)
    return
  if argv[1] == 'beam':
    print(json.dumps(beam.run()), flush=True)
    return
  print(xla_cpu.apply(), file=sys.stderr)  # the kernels `main` trains with; before JAX starts a backend
  if argv[1] == 'profile':
    # XLA reads its flags when the backend starts, which has not happened yet: CPU ops become trace events.
    os.environ['XLA_FLAGS'] = f"{os.environ.get('XLA_FLAGS', '')} {profile_step.TRACE_FLAG}".strip()
    results = profile_step.run(train_step.flags.FLAGS.steps)
    print(profile_step.format_table(results), file=sys.stderr)
    print(json.dumps(results), flush=True)
    return
  if argv[1] == 'layers':
    f = train_step.flags.FLAGS
    try:
      results = layers.run(f.depth, f.image_size, f.batch, f.width, f.steps, with_torch=f.torch)
    except ValueError as e:  # not a bottleneck ResNet: one line, no traceback
      print(f'{argv[0]} layers: error: {e}', file=sys.stderr)
      sys.exit(2)
    print(layers.format_table(results), file=sys.stderr)
    print(json.dumps(results), flush=True)
    return
  if argv[1] == 'predict':
    results = predict.run()
    for name in train_step.flags.FLAGS.predict_models:
      print(f'{name}: {results[name]}', file=sys.stderr)
    print(json.dumps(results), flush=True)
    return
  if argv[1] == 'train_step':
    try:
      results = train_step.run()
    except ValueError as e:  # a flag combination that cannot be measured: one line, no traceback
      print(f'{argv[0]} train_step: error: {e}', file=sys.stderr)
      sys.exit(2)
  else:
    results = pipeline.run()
  for key, value in results.items():
    print(f'{key}: {value}', file=sys.stderr)
  print(json.dumps(results), flush=True)


if __name__ == '__main__':
  app.run(main)
