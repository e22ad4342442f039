r"""A web page for a trained workdir: drop a video, see what the model sees and says.

  python -m scfa_jax.tools.serve --workdir=/tmp/scfa_demo            # http://127.0.0.1:7860
  python -m scfa_jax.tools.serve --workdir=W --host=0.0.0.0 --port=8080   # reachable from other machines

Needs the ``serve`` extra (``pip install -e ".[serve]"``). Listens on 127.0.0.1
unless ``--host`` says otherwise; no share link, no analytics. The page's
logic is ``scfa_jax.serve.page``, its layout ``scfa_jax.serve.app``.
"""

from __future__ import annotations

import os
from typing import Sequence

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string('workdir', None, 'A trained and evaluated workdir.', required=True)
  flags.DEFINE_string('host', '127.0.0.1', 'Address to listen on (0.0.0.0: every interface, i.e. public).')
  flags.DEFINE_integer('port', 7860, 'Port to listen on.')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest intact one).')
  flags.DEFINE_integer('top_k', 5, 'Classes shown.')
  flags.DEFINE_integer('k', 5, 'Nearest training videos shown.')
  flags.DEFINE_integer('examples', 4, 'Test-split videos offered as examples (0: none).')
  flags.DEFINE_string('examples_dir', None, 'Where the examples are written (default: <workdir>/serve_examples).')


def main(argv: Sequence[str]) -> None:
  from scfa_jax.inference import cli  # pylint: disable=g-import-not-at-top
  cli.start()

  def body() -> int:
    from scfa_jax import errors  # pylint: disable=g-import-not-at-top
    from scfa_jax.serve import app as app_lib  # pylint: disable=g-import-not-at-top
    from scfa_jax.serve import examples as examples_lib  # pylint: disable=g-import-not-at-top
    from scfa_jax.serve import page as page_lib  # pylint: disable=g-import-not-at-top
    if len(argv) > 1:
      raise errors.ConfigError(f'Unexpected arguments {argv[1:]}.')
    app_lib.import_gradio()  # before the model loads: a missing extra is one line, at once
    page = page_lib.Page.from_workdir(FLAGS.workdir, step=FLAGS.step, top_k=FLAGS.top_k, k=FLAGS.k)
    folder = FLAGS.examples_dir or os.path.join(FLAGS.workdir, 'serve_examples')
    clips = examples_lib.test_split_examples(page.predictor.config, folder, count=FLAGS.examples,
                                             class_names=page.predictor.class_names)
    page.warm_up()
    blocks = app_lib.build(page, clips)
    print(f'Serving {FLAGS.workdir} on http://{FLAGS.host}:{FLAGS.port} (Ctrl+C stops).', flush=True)
    app_lib.launch(blocks, host=FLAGS.host, port=FLAGS.port, allowed_paths=[folder])
    return 0

  cli.run(body)


if __name__ == '__main__':
  define_flags()
  app.run(main)
