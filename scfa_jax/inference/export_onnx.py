"""The serving graph of ``inference.export`` as an ONNX model (jax2onnx), with a symbolic batch dimension.

``model.onnx`` takes ``images`` uint8 [batch, H, W, 3] and returns
``embedding`` and ``probabilities``, the weights inside as constants; it runs
in onnxruntime on any platform it supports. Needs the ``onnx`` extra
(``pip install -e ".[onnx]"``: jax2onnx 0.13.0, onnx, onnxruntime).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path
from typing import Any, Optional

import jax
import jax.numpy as jnp

from scfa_jax import errors
from scfa_jax.data import input_pipeline
from scfa_jax.inference import export

MODEL_FILE = 'model.onnx'
OUTPUTS = ('embedding', 'probabilities')  # jax2onnx flattens the output dict in sorted key order
MISSING = ('--format=onnx needs the onnx extra (jax2onnx, onnx, onnxruntime): pip install -e ".[onnx]" '
           '(with -c constraints.txt).')


def load_converter():
  """jax2onnx's ``to_onnx``, with only the plugins a Linen model needs imported.

  jax2onnx imports every plugin and example model on its first conversion
  (about 80 s on a loaded 2-core machine, against 7 s for the JAX and Linen
  plugins alone); the others (Equinox, NNX, MaxText, ...) are never used here.
  """
  try:
    import jax2onnx  # pylint: disable=g-import-not-at-top
    import onnx  # pylint: disable=g-import-not-at-top,unused-import
    from jax2onnx.plugins import plugin_system  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise errors.MissingDependencyError(MISSING) from None
  if not getattr(plugin_system, '_already_imported_plugins', True) and hasattr(plugin_system, '_import_tree'):
    root = Path(plugin_system.__file__).parent
    for sub in (('jax',), ('flax', 'linen')):
      plugin_system._import_tree(root.joinpath(*sub), '.'.join(('jax2onnx.plugins',) + sub))  # pylint: disable=protected-access
    plugin_system._already_imported_plugins = True  # pylint: disable=protected-access
  return jax2onnx.to_onnx


def convert(fn, variables, shape) -> Any:
  """The ONNX ModelProto of ``fn(variables, images)`` for images uint8 [batch, *shape], batch symbolic."""
  to_onnx = load_converter()
  batch = jax.export.symbolic_shape('batch')[0]
  quiet = [logging.getLogger(name) for name in ('jax2onnx', 'onnx_ir')]
  levels = [q.level for q in quiet]
  for q in quiet:
    q.setLevel(logging.ERROR)
  try:
    with contextlib.redirect_stdout(io.StringIO()):  # its plugins print DEBUG lines
      return to_onnx(lambda images: fn(variables, images),
                     [jax.ShapeDtypeStruct((batch,) + tuple(shape), jnp.uint8)],
                     model_name='scfa_jax', input_names=['images'], output_names=list(OUTPUTS))
  finally:
    for q, level in zip(quiet, levels):
      q.setLevel(level)


def session(path: str):
  """An onnxruntime CPU session of ``path`` (its shape-merge warnings silenced)."""
  try:
    import onnxruntime  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise errors.MissingDependencyError(MISSING) from None
  options = onnxruntime.SessionOptions()
  options.log_severity_level = 3
  return onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def save_onnx(predictor, out: str, head: Optional[str] = None) -> dict[str, Any]:
  """Writes ``model.onnx`` and ``export.json`` into ``out``; returns the metadata."""
  fn, variables, head = export.export_fn(predictor, head)
  shape = input_pipeline.GridSpec.from_config(predictor.config.data).image_shape
  dims = export.output_dims(fn, variables, shape)
  model = convert(fn, variables, shape)
  export._check_writable(out)  # pylint: disable=protected-access
  with open(os.path.join(out, MODEL_FILE), 'wb') as f:
    f.write(model.SerializeToString())
  meta = export.metadata(predictor, head, 'onnx', dims['embedding'])
  meta['file'] = MODEL_FILE
  export.write_metadata(out, meta)
  return meta
