"""What the inference commands share: start-up, ``--help``, one-line errors, and the list of skipped videos."""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable, Sequence

from scfa_jax import errors

# Read by OpenCV when cv2 is imported: its own warnings ("[ WARN:0@6.4] global cap.cpp ...") and FFmpeg's
# ("moov atom not found") repeat, in C++ terms, what the skipped-file line already says. setdefault keeps a
# user's own choice. Only before the first import of cv2 counts.
QUIET_OPENCV_ENV = {'OPENCV_LOG_LEVEL': 'ERROR', 'OPENCV_FFMPEG_LOGLEVEL': '-8'}  # -8: AV_LOG_QUIET
HELP_FLAGS = ('--help', '-h', '-?', '--helpshort', '--helpfull', '--helpxml')


def prog() -> str:
  """The command as the user typed it (``python -m scfa_jax.tools.embed``), not its file's absolute path."""
  spec = getattr(sys.modules.get('__main__'), '__spec__', None)
  return f'python -m {spec.name}' if spec is not None and spec.name else os.path.basename(sys.argv[0])


def launch(define_flags: Callable[[], None], main: Callable[[Sequence[str]], None], doc: str) -> None:
  """Defines the flags and runs ``main`` through absl; ``--help`` prints ``doc`` and the flags and exits 0."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  define_flags()
  asked = [a for a in sys.argv[1:] if a.split('=', 1)[0] in HELP_FLAGS]
  if asked:  # absl's own --help exits 1
    flag_values = flags.FLAGS
    print(doc.strip() + '\n')
    print(flag_values.get_help() if asked[0] == '--helpfull' else
          'flags:\n' + flag_values.module_help(sys.modules['__main__']))
    sys.exit(0)
  app.run(main)


def start(verbose: bool = False) -> None:
  """Quiet console (TensorFlow's, OpenCV's and FFmpeg's C++ lines too), TensorFlow kept off the GPUs (tf.data
  only), as ``scfa_jax.main`` starts; and a quick start (``scfa_jax.startup``: TensorFlow without Keras, compiled
  programs kept on disk)."""
  if not verbose:
    for key, value in QUIET_OPENCV_ENV.items():
      os.environ.setdefault(key, value)
  from scfa_jax import console  # pylint: disable=g-import-not-at-top
  from scfa_jax import startup  # pylint: disable=g-import-not-at-top
  console.configure(verbose=verbose, filter_native_stderr=True)  # imports TensorFlow through TFDS: without Keras
  startup.import_tensorflow().config.set_visible_devices([], 'GPU')
  startup.use_compilation_cache()


def run(body: Callable[[], int]) -> None:
  """Runs a command's body; a user's mistake is one line on stderr and its exit code, never a traceback."""
  try:
    code = body()
  except errors.UserError as e:
    print(f'{prog()}: error: {e}', file=sys.stderr)
    sys.exit(e.exit_code)
  sys.exit(code)


def reason(name: str, error: Exception) -> str:
  """``error``'s message without the leading ``<name>: `` its raiser put there (the line names it once)."""
  text = str(error)
  for prefix in (f'{name}: ', f'{_display(name)}: '):
    if text.startswith(prefix):
      return text[len(prefix):]
  return text


def report_skipped(skipped: Sequence[tuple[str, Exception]], total: int) -> int:
  """Lists every input that was skipped and why, once each; returns the exit code (1 if any was skipped)."""
  if not skipped:
    return 0
  logging.error('%d of %d input(s) skipped:', len(skipped), total)
  for name, error in skipped:
    print(f'  {_display(name)}: {reason(name, error)}', file=sys.stderr)
  return 1


def _display(name: str) -> str:
  from scfa_jax.inference import paths  # pylint: disable=g-import-not-at-top
  return paths.display(name)
