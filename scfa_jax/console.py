"""What the console shows: the run's own lines, not the libraries' start-up chatter.

By default (quiet) the C++ log lines of TensorFlow and XLA (oneDNN notes, CUDA
stubs, ``cuInit`` errors on machines without a GPU), INFO lines of other
libraries, TensorFlow / TFDS deprecation warnings and Python deprecation
warnings are hidden, and each log line is ``HH:MM:SS message``. ``--verbosity=1`` (absl's flag) or
``SCFA_VERBOSE=1`` brings everything back in absl's format, for debugging.

Log lines are written through ``tqdm.write``, so a live progress bar
(``training.loop.Progress``) stays at the bottom of a terminal while lines
scroll above it.

TensorFlow 2.21 writes its C++ lines before absl logging is initialised, where
``TF_CPP_MIN_LOG_LEVEL`` no longer reaches them, so the command line
(``filter_native_stderr=True``, set by ``main.py`` before TensorFlow is
imported; notebooks too) also routes file descriptor 2 through a thread that
drops lines in the C++ log format; Python's own ``sys.stderr`` keeps the real
terminal.
Fatal (``F``) lines always pass.

TFDS prints (not logs) a "Downloading and preparing dataset ..." banner when it
builds a dataset, even a generated one that downloads nothing; quiet mode drops
what libraries print inside :func:`without_library_prints`, and the dataset
code logs its own line instead.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import re
import sys
import threading
import warnings
from typing import Iterator, Optional, TextIO

import tqdm

VERBOSE_ENV = 'SCFA_VERBOSE'

# Read by TensorFlow / XLA / gRPC when their C++ runtimes start; setdefault keeps a user's own choice.
_QUIET_ENV = {
    'TF_CPP_MIN_LOG_LEVEL': '3',  # TF C++: oneDNN notes, cuda stubs, cuInit errors, cpu_feature_guard
    'GRPC_VERBOSITY': 'ERROR',
    'GLOG_minloglevel': '2',
}
# glog/absl C++ lines below FATAL, absl's pre-initialisation notice, and cpu_feature_guard's second line.
_NATIVE_NOISE = re.compile(rb'^([IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] |'
                           rb'WARNING: All log messages before absl::InitializeLog\(\)|'
                           rb'To enable the following instructions: )')
# Libraries whose warnings are deprecation notices addressed to their own developers, not to users.
_NOISY_WARNINGS = ('/tensorflow/', '/tensorflow_datasets/', '/etils/', '/tensorboard/', '/keras/')


_quiet = False  # set by configure(): quiet mode is on


def is_verbose(verbosity: int = 0) -> bool:
  """Verbose when absl's ``--verbosity`` is >= 1 or ``$SCFA_VERBOSE`` is set to a non-zero value."""
  return verbosity >= 1 or os.environ.get(VERBOSE_ENV, '0') not in ('', '0', 'false', 'False')


class _LibraryFilter(logging.Filter):
  """Quiet mode: scfa_jax's lines, other libraries' errors, and their warnings unless they are deprecation chatter."""

  def filter(self, record: logging.LogRecord) -> bool:
    path = record.pathname.replace(os.sep, '/')
    if record.levelno >= logging.ERROR or '/scfa_jax/' in path or 'scfa_jax' in record.name:
      return True
    return record.levelno >= logging.WARNING and not any(p in path for p in _NOISY_WARNINGS)


class _QuietFormatter(logging.Formatter):
  """``HH:MM:SS message``; warnings and errors name their level."""

  def __init__(self):
    super().__init__('%(asctime)s %(message)s', datefmt='%H:%M:%S')

  def format(self, record: logging.LogRecord) -> str:
    line = super().format(record)
    if record.levelno >= logging.WARNING:
      stamp, _, message = line.partition(' ')
      line = f'{stamp} {record.levelname}: {message}'
    return line


class TqdmHandler(logging.Handler):
  """Writes each record with ``tqdm.write``: above any live progress bar instead of through it."""

  def __init__(self, stream: Optional[TextIO] = None):
    super().__init__()
    self._stream = stream

  def emit(self, record: logging.LogRecord) -> None:
    try:
      tqdm.tqdm.write(self.format(record), file=self._stream or sys.stderr)
    except Exception:  # pylint: disable=broad-except
      self.handleError(record)


def configure(verbose: bool = False, *, stream: Optional[TextIO] = None,
              filter_native_stderr: bool = False) -> None:
  """Sets up the console for a run: quiet unless ``verbose``. Idempotent.

  Args:
    verbose: keep every library's output and absl's line format.
    stream: where log lines go (default: sys.stderr at write time; notebooks pass sys.stdout).
    filter_native_stderr: quiet mode also drops C++ log lines written to file descriptor 2 (which ipykernel
      forwards into the cell output).
  """
  global _quiet
  _quiet = not verbose
  root = logging.getLogger()
  for handler in list(root.handlers):
    if isinstance(handler, TqdmHandler) or type(handler).__name__ == 'ABSLHandler':
      root.removeHandler(handler)
  handler = TqdmHandler(stream)
  if verbose:
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
    handler.setFormatter(absl_logging.PythonFormatter())
  else:
    for key, value in _QUIET_ENV.items():
      os.environ.setdefault(key, value)
    handler.setFormatter(_QuietFormatter())
    handler.addFilter(_LibraryFilter())
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
      warnings.filterwarnings('ignore', category=category)
    if filter_native_stderr:
      _filter_native_stderr()
    if 'tensorflow_datasets' in sys.modules or _importable('tensorflow_datasets'):
      from tensorflow_datasets.core.utils import tqdm_utils  # pylint: disable=g-import-not-at-top
      tqdm_utils.disable_progress_bar()  # dataset builds log one line each instead
  root.addHandler(handler)
  if root.level > logging.INFO or root.level == logging.NOTSET:
    root.setLevel(logging.INFO)


@contextlib.contextmanager
def without_library_prints() -> Iterator[None]:
  """In quiet mode, drops what is printed to ``sys.stdout`` inside the block (log lines keep their stream)."""
  if not _quiet:
    yield
    return
  with contextlib.redirect_stdout(io.StringIO()):
    yield


def _importable(module: str) -> bool:
  import importlib.util  # pylint: disable=g-import-not-at-top
  return importlib.util.find_spec(module) is not None


_native_filter: Optional[threading.Thread] = None


def _filter_native_stderr() -> None:
  """Points fd 2 at a pipe whose reader forwards all but C++ log lines; sys.stderr keeps the real fd 2."""
  global _native_filter
  if _native_filter is not None:
    return
  sys.stderr.flush()
  real = os.dup(2)
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)
  if _fileno(sys.stderr) == 2:  # a terminal or file; a notebook kernel's sys.stderr is its own stream already
    sys.stderr = os.fdopen(os.dup(real), 'w', buffering=1, errors='backslashreplace')
  _native_filter = threading.Thread(target=_pump, args=(read_end, real), name='native-stderr-filter', daemon=True)
  _native_filter.start()

  def restore() -> None:  # at exit: fd 2 back to the terminal, then let the pump drain what is left
    os.dup2(real, 2)
    _native_filter.join(timeout=2.0)
  atexit.register(restore)


def _fileno(stream: TextIO) -> int:
  try:
    return stream.fileno()
  except (AttributeError, OSError, ValueError):
    return -1


def _pump(read_end: int, real: int) -> None:
  pending = b''
  while True:
    chunk = os.read(read_end, 65536)
    if not chunk:
      break
    lines = (pending + chunk).split(b'\n')
    pending = lines.pop()
    kept = [line for line in lines if not _NATIVE_NOISE.match(line)]
    if kept:
      os.write(real, b'\n'.join(kept) + b'\n')
  if pending and not _NATIVE_NOISE.match(pending):
    os.write(real, pending)
