r"""Exports a trained workdir as one serving graph: uint8 grid batch -> embedding and class probabilities.

  python -m scfa_jax.tools.export --workdir=/tmp/scfa_demo --out=/tmp/scfa_demo_saved_model
  python -m scfa_jax.tools.export --workdir=/tmp/scfa_demo --out=/tmp/scfa_demo_onnx --format=onnx

``--format=saved_model`` (default) writes a TF SavedModel (``jax.experimental.jax2tf``,
native serialization, lowered for each of ``--platforms``: CPU, CUDA GPUs and TPUs
by default; signature ``serving_default(images: uint8 [batch, H, W, 3])`` returning
``embedding`` and ``probabilities``). ``--format=onnx`` writes ``model.onnx`` (jax2onnx;
the ``onnx`` extra), the same inputs and outputs with a symbolic batch dimension.
Both write ``export.json`` beside the model (class names, input shape, head).
"""

from __future__ import annotations

import json
from typing import Sequence

from absl import flags

FLAGS = flags.FLAGS
FORMATS = ('saved_model', 'onnx')
PLATFORMS = ('cpu', 'cuda', 'tpu')  # inference.export.PLATFORMS, without importing JAX for --help


def define_flags() -> None:
  flags.DEFINE_string('workdir', None, 'A trained (and evaluated) workdir.', required=True)
  flags.DEFINE_string('out', None, 'Folder to write the exported model into.', required=True)
  flags.DEFINE_enum('format', 'saved_model', FORMATS, 'Export format: a TF SavedModel or an ONNX model.')
  flags.DEFINE_enum('head', None, ['finetune', 'classifier', 'probe'],
                    'Head inside the graph (default: the best available of finetune, classifier, probe).')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest intact one).')
  flags.DEFINE_list('platforms', list(PLATFORMS), 'saved_model: the platforms the graph is lowered for (a '
                    'TensorFlow Serving host of another kind refuses it).')


def main(argv: Sequence[str]) -> None:
  from scfa_jax.inference import cli  # pylint: disable=g-import-not-at-top
  cli.start()

  def body() -> int:
    from scfa_jax import errors  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import export  # pylint: disable=g-import-not-at-top
    if len(argv) > 1:
      raise errors.ConfigError(f'Unexpected arguments {argv[1:]}.')
    if FLAGS.format == 'onnx':
      from scfa_jax.inference import export_onnx  # pylint: disable=g-import-not-at-top
      export_onnx.load_converter()  # a missing extra: said before the workdir loads
      save = export_onnx.save_onnx
    else:
      platforms = export.check_platforms(FLAGS.platforms)
      save = lambda p, out, head: export.save_saved_model(p, out, head, platforms)  # pylint: disable=unnecessary-lambda-assignment
    predictor = Predictor.from_workdir(FLAGS.workdir, step=FLAGS.step)
    meta = save(predictor, FLAGS.out, FLAGS.head)
    print(f'Exported {FLAGS.workdir} (step {meta["step"]}, head {meta["head"]}) to {FLAGS.out}:')
    for key in ('input', 'outputs', 'class_names', 'platforms'):
      if key in meta:
        print(f'  {key}: {json.dumps(meta[key])}')
    return 0

  cli.run(body)


if __name__ == '__main__':
  from scfa_jax.inference import cli as _cli  # pylint: disable=g-import-not-at-top
  _cli.launch(define_flags, main, __doc__)
