"""A quick start for the short-lived commands (predict, embed, search, export, bench predict).

Two costs dominate such a command before its first video: importing
TensorFlow, which also imports all of Keras (and with it scikit-learn, SciPy
and matplotlib) only to register Keras' optimizers for SavedModels that hold
them; and compiling the model, which is the same program every run.
:func:`keep_keras_out_of_tensorflows_import`, which ``import scfa_jax``
calls, skips the first wherever TensorFlow is first imported (a data module,
TFDS, a notebook cell after ``import scfa_jax``); :func:`use_compilation_cache`
keeps the second on disk (``docs/inference.md``, "Start-up").
:func:`import_metric_writers` keeps Keras out of a training run's start too.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import types
from typing import Any, Iterator, Optional

_KERAS_AT_TF_IMPORT = 'keras.src.optimizers'  # TensorFlow imports this eagerly and tolerates an ImportError


@contextlib.contextmanager
def _keras_optimizers_unimportable() -> Iterator[None]:
  if _KERAS_AT_TF_IMPORT in sys.modules:
    yield
    return
  sys.modules[_KERAS_AT_TF_IMPORT] = None  # an ImportError for TensorFlow's try/except
  try:
    yield
  finally:
    if sys.modules.get(_KERAS_AT_TF_IMPORT, 0) is None:
      del sys.modules[_KERAS_AT_TF_IMPORT]


class _TensorFlowWithoutKerasFinder(importlib.abc.MetaPathFinder):
  """Finds ``tensorflow`` once, with a loader that imports it while Keras' optimizers cannot be imported."""

  def __init__(self):
    self._looked_up = False

  def find_spec(self, fullname, path, target=None):  # pylint: disable=unused-argument
    if fullname != 'tensorflow' or self._looked_up:
      return None
    self._looked_up = True  # the lookup below goes through sys.meta_path again: past this finder, this time
    spec = importlib.util.find_spec(fullname)
    if spec is None or not hasattr(spec.loader, 'exec_module'):
      return spec
    exec_module = spec.loader.exec_module

    def exec_without_keras(module):
      _remove_finders()  # its one import is under way
      with _keras_optimizers_unimportable():
        exec_module(module)

    spec.loader.exec_module = exec_without_keras  # this spec's own loader object, made for this import
    return spec


def keep_keras_out_of_tensorflows_import() -> None:
  """Makes the process's first ``import tensorflow``, wherever it happens, skip the eager Keras import.

  TensorFlow imports all of Keras (and scikit-learn and SciPy with it) at
  import only to register Keras' optimizers for SavedModels that hold them:
  3.3 s of CPU on 2 cores (8.4 s -> 5.1 s), paid by every process that
  imported a data, evaluation or training module before this. Keras still
  imports normally when something asks for it (``tf.keras``, ``import keras``);
  import TensorFlow before ``scfa_jax`` to keep its eager import. A no-op once
  TensorFlow is imported.
  """
  if 'tensorflow' not in sys.modules and not any(isinstance(f, _TensorFlowWithoutKerasFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _TensorFlowWithoutKerasFinder())


def _remove_finders() -> None:
  sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TensorFlowWithoutKerasFinder)]


def import_tensorflow() -> Any:
  """``import tensorflow`` (without its eager Keras import, as every first import after ``import scfa_jax``)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


_HPARAMS_KERAS = 'tensorboard.plugins.hparams._keras'  # defines a Keras callback class, so imports all of Keras


class _KerasCallbackNotImported:
  """Stands in for TensorBoard's ``hparams.KerasCallback``, which scfa_jax never uses."""

  def __init__(self, *unused_args, **unused_kwargs):
    raise ImportError('scfa_jax imported TensorBoard\'s hparams API without its Keras callback; import '
                      f'{_HPARAMS_KERAS} before scfa_jax trains to use hparams.KerasCallback.')


def import_metric_writers() -> Any:
  """``clu.metric_writers`` without importing Keras.

  CLU's TensorBoard writer imports TensorBoard's hparams API (for
  ``write_hparams``), which defines a Keras callback class at import and so
  imports all of Keras, scikit-learn and SciPy: 3-5 s of every training run's
  start on 2 cores, for a class nothing here uses. While CLU is imported the
  callback's module is a stand-in; afterwards it is removed again, so Keras and
  the real module still import normally when something asks for them.
  """
  if 'clu.metric_writers' in sys.modules or _HPARAMS_KERAS in sys.modules:
    from clu import metric_writers  # pylint: disable=g-import-not-at-top
    return metric_writers
  stand_in = types.ModuleType(_HPARAMS_KERAS)
  stand_in.Callback = _KerasCallbackNotImported
  sys.modules[_HPARAMS_KERAS] = stand_in
  try:
    from clu import metric_writers  # pylint: disable=g-import-not-at-top
  finally:
    if sys.modules.get(_HPARAMS_KERAS) is stand_in:
      del sys.modules[_HPARAMS_KERAS]
    hparams = sys.modules.get('tensorboard.plugins.hparams')
    if getattr(hparams, '_keras', None) is stand_in:
      delattr(hparams, '_keras')
  return metric_writers


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
