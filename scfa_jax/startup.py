"""A quick start for the short-lived commands (predict, embed, search, export, bench predict).

Two costs dominate such a command before its first video: importing
TensorFlow, which also imports all of Keras (and with it scikit-learn, SciPy
and matplotlib) only to register Keras' optimizers for SavedModels that hold
them; and compiling the model, which is the same program every run.
:func:`import_tensorflow` skips the first, :func:`use_compilation_cache`
keeps the second on disk (``docs/inference.md``, "Start-up").
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator, Optional

_KERAS_AT_TF_IMPORT = 'keras.src.optimizers'  # TensorFlow imports this eagerly and tolerates an ImportError


@contextlib.contextmanager
def tensorflow_without_keras() -> Iterator[None]:
  """Within it, importing TensorFlow (directly, or through TFDS) skips the eager Keras import.

  Keras still imports normally afterwards, when something asks for it.
  """
  if 'tensorflow' in sys.modules or _KERAS_AT_TF_IMPORT in sys.modules:
    yield
    return
  sys.modules[_KERAS_AT_TF_IMPORT] = None  # an ImportError for TensorFlow's try/except
  try:
    yield
  finally:
    if sys.modules.get(_KERAS_AT_TF_IMPORT, 0) is None:
      del sys.modules[_KERAS_AT_TF_IMPORT]


def import_tensorflow() -> Any:
  """``import tensorflow`` without the eager Keras import (:func:`tensorflow_without_keras`)."""
  with tensorflow_without_keras():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def cache_dir() -> str:
  """``$XDG_CACHE_HOME/scfa_jax/jax`` (``~/.cache/scfa_jax/jax``): compiled programs shared by the commands."""
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'scfa_jax', 'jax')


def use_compilation_cache(directory: Optional[str] = None) -> Optional[str]:
  """Keeps JAX's compiled programs in ``directory`` (default :func:`cache_dir`) unless one is configured already.

  A user's own ``JAX_COMPILATION_CACHE_DIR`` wins; ``SCFA_JAX_NO_CACHE=1``
  turns it off. Returns the directory used, or None.
  """
  import jax  # pylint: disable=g-import-not-at-top
  if os.environ.get('SCFA_JAX_NO_CACHE') == '1':
    return None
  if jax.config.jax_compilation_cache_dir:
    return jax.config.jax_compilation_cache_dir
  directory = directory or cache_dir()
  try:
    os.makedirs(directory, exist_ok=True)
  except OSError:
    return None  # a read-only home: compile every run, as before
  jax.config.update('jax_compilation_cache_dir', directory)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)  # the inference programs compile in ~1-3 s
  return directory
