"""What the inference commands share: start-up, one-line errors, and the list of skipped videos."""

from __future__ import annotations

import logging
import sys
from typing import Callable, Sequence

from scfa_jax import errors


def start(verbose: bool = False) -> None:
  """Quiet console, TensorFlow kept off the GPUs (tf.data only): as ``scfa_jax.main`` starts; and a quick
  start (``scfa_jax.startup``: TensorFlow without Keras, compiled programs kept on disk)."""
  from scfa_jax import console  # pylint: disable=g-import-not-at-top
  from scfa_jax import startup  # pylint: disable=g-import-not-at-top
  with startup.tensorflow_without_keras():  # the console set-up imports TensorFlow through TFDS
    console.configure(verbose=verbose, filter_native_stderr=True)
    startup.import_tensorflow().config.set_visible_devices([], 'GPU')
  startup.use_compilation_cache()


def run(body: Callable[[], int]) -> None:
  """Runs a command's body; a user's mistake is one line on stderr and its exit code, never a traceback."""
  try:
    code = body()
  except errors.UserError as e:
    print(f'{sys.argv[0]}: error: {e}', file=sys.stderr)
    sys.exit(e.exit_code)
  sys.exit(code)


def report_skipped(skipped: Sequence[tuple[str, Exception]], total: int) -> int:
  """Logs every video that was skipped and why; returns the exit code (1 if any was skipped)."""
  if not skipped:
    return 0
  logging.error('%d of %d video(s) skipped:', len(skipped), total)
  for name, error in skipped:
    print(f'  skipped {name}: {error}', file=sys.stderr)
  return 1
