r"""``python -m scfa_jax.bench pipeline [--flags]``: benchmarks, each printing one JSON line last.

  pipeline  The training input pipeline against the decode bound and the
            naive per-sample video loader, with memory (``bench.pipeline``).
  build     Only prepares the pipeline benchmark's data in --data_dir.
  train_step  One SCFA training step in JAX and the same step in PyTorch,
            side by side: step time, grids/s, compile, recompiles, memory,
            MFU on accelerators (``bench.train_step``).
  profile   Where that step's time goes: XLA ops grouped by kind and
            direction from a profiler trace (``bench.profile_step``).
  predict   videos/s of Predictor.embed against decoding alone, the model in
            JAX, the SavedModel and ONNX, and whole embed processes'
            start-up, demo model and ResNet-50 at 224 px, on the real sample
            clips (``bench.predict``).
  serve     The web page's answer time for a 10-second clip after warm-up
            (``bench.serve``; --serve_workdir=W).
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
  python -m scfa_jax.bench predict
  python -m scfa_jax.bench serve --serve_workdir=/tmp/scfa_demo
  python -m scfa_jax.bench search --search_sizes=10000,100000 --search_dim=2048
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging

from scfa_jax import console
from scfa_jax import startup
from scfa_jax import xla_cpu

HELP = ('--help', '-h', '-?', '--helpshort', '--helpfull')
if any(arg in HELP for arg in sys.argv[1:]) or 'predict' in sys.argv[1:2]:
  console.configure(filter_native_stderr=True)  # no C++ start-up lines from the imports below
startup.import_tensorflow()  # without Keras (``import scfa_jax``): seconds of imports no benchmark here needs

# pylint: disable=g-import-not-at-top,wrong-import-position  (after the console is set up)
from scfa_jax.bench import beam
from scfa_jax.bench import layers
from scfa_jax.bench import pipeline
from scfa_jax.bench import predict
from scfa_jax.bench import profile_step
from scfa_jax.bench import serve
from scfa_jax.bench import search
from scfa_jax.bench import train_step
# pylint: enable=g-import-not-at-top,wrong-import-position

for _module in (pipeline, train_step, predict, serve, search, beam):  # their flags in --help
  flags.adopt_module_key_flags(_module)


def main(argv: Sequence[str]) -> None:
  commands = ('pipeline', 'build', 'train_step', 'profile', 'layers', 'predict', 'serve', 'search', 'beam')
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
  if argv[1] == 'serve':
    try:
      results = serve.run()
    except ValueError as e:  # no workdir, or one that cannot answer: one line, no traceback
      print(f'{argv[0]} serve: error: {e}', file=sys.stderr)
      sys.exit(2)
    for key, value in results.items():
      print(f'{key}: {value}', file=sys.stderr)
    print(json.dumps(results), flush=True)
    return
  if argv[1] == 'predict':
    results = predict.run()
    print('\n'.join(predict.format_lines(results)), file=sys.stderr)
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
  if any(arg in HELP for arg in sys.argv[1:]):  # absl exits 1 after --help; asking for help is no error
    app.define_help_flags()
    app.usage(shorthelp='--helpfull' not in sys.argv, writeto_stdout=True, exitcode=0)
  app.run(main)
