r"""Exports a trained workdir as one serving graph: uint8 grid batch -> embedding and class probabilities.

  python -m scfa_jax.tools.export --workdir=/tmp/scfa_demo --out=/tmp/scfa_demo_saved_model --format=saved_model

Writes a TF SavedModel (``jax.experimental.jax2tf``, native serialization;
signature ``serving_default(images: uint8 [batch, H, W, 3])`` returning
``embedding`` and ``probabilities``) and ``export.json`` beside it (class names,
input shape, head). ``--format=onnx`` is not available: see docs/inference.md, "Export".
"""

from __future__ import annotations

import json
from typing import Sequence

from absl import flags

FLAGS = flags.FLAGS
FORMATS = ('saved_model', 'onnx')
ONNX_BLOCKED = ('--format=onnx needs jax2onnx, whose every release (up to 0.17.1) requires orbax-checkpoint<0.11.37 '
                'while scfa_jax needs orbax-checkpoint 0.12 (constraints.txt): the two cannot be installed together. '
                'Use --format=saved_model.')


def define_flags() -> None:
  flags.DEFINE_string('workdir', None, 'A trained (and evaluated) workdir.', required=True)
  flags.DEFINE_string('out', None, 'Folder to write the exported model into.', required=True)
  flags.DEFINE_enum('format', 'saved_model', FORMATS, 'Export format.')
  flags.DEFINE_enum('head', None, ['finetune', 'classifier', 'probe'],
                    'Head inside the graph (default: the best available of finetune, classifier, probe).')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest intact one).')


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
      raise errors.MissingDependencyError(ONNX_BLOCKED)
    predictor = Predictor.from_workdir(FLAGS.workdir, step=FLAGS.step)
    meta = export.save_saved_model(predictor, FLAGS.out, FLAGS.head)
    print(f'Exported {FLAGS.workdir} (step {meta["step"]}, head {meta["head"]}) to {FLAGS.out}:')
    for key in ('input', 'outputs', 'class_names'):
      print(f'  {key}: {json.dumps(meta[key])}')
    return 0

  cli.run(body)


if __name__ == '__main__':
  from scfa_jax.inference import cli as _cli  # pylint: disable=g-import-not-at-top
  _cli.launch(define_flags, main, __doc__)
