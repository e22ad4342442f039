"""One graph from a uint8 grid batch to the embedding and class probabilities, for serving stacks.

``export_fn`` is that graph in JAX: pixel normalisation, the encoder in
inference mode (``steps.embed_step``, as evaluation runs it) and the head (the
fine-tuned or cross-entropy classifier's softmax, or the saved linear probe),
all inside. ``save_saved_model`` converts it with ``jax.experimental.jax2tf``
(native serialization: the StableHLO of the JAX function, run by TensorFlow's
XLA) into a TF SavedModel whose batch dimension is free. Beside it,
``export.json`` records the class names, the input shape and dtype, and the
outputs. The kNN head is not exported: it needs the whole train split.

The graph takes grids, not videos: frame sampling and tiling stay on the
serving side (``inference.views``); averaging the embeddings of a video's
test-time views is a mean over rows.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from scfa_jax import errors
from scfa_jax.data import input_pipeline
from scfa_jax.training import steps

EXPORTABLE_HEADS = ('finetune', 'classifier', 'probe')
META_FILE = 'export.json'


def _probe_fn(probe) -> Callable[[jax.Array], jax.Array]:
  mean, scale = jnp.asarray(probe.mean, jnp.float32), jnp.asarray(probe.scale, jnp.float32)
  coef, intercept = jnp.asarray(probe.coef, jnp.float32), jnp.asarray(probe.intercept, jnp.float32)

  def scores(features):
    z = ((features - mean) / scale) @ coef.T + intercept
    return jnp.concatenate([jnp.zeros_like(z), z], axis=1) if coef.shape[0] == 1 else z

  return scores


def export_fn(predictor, head: Optional[str] = None) -> tuple[Callable[..., dict[str, jax.Array]], Any, str]:
  """(fn(variables, images uint8 [B, H, W, 3]) -> {'embedding', 'probabilities'}, variables, head)."""
  if head == 'knn':
    raise errors.ConfigError('The kNN head needs the whole train split at serving time and is not exported; '
                             'pass --head=probe (or finetune, classifier).')
  head = head or next((h for h in predictor.available_heads() if h in EXPORTABLE_HEADS), None)
  if head is None:
    predictor.resolve_head(None)  # no heads at all: names the --mode=eval command
    raise errors.ConfigError(f'{predictor.workdir} has only the kNN head, which is not exported; run --mode=eval '
                             'again to save the linear probe.')
  predictor.resolve_head(head)  # a head this workdir lacks
  num_classes = len(predictor.class_names)
  encoder = predictor.encoder
  variables = {'encoder': encoder.variables}
  if head == 'finetune':
    variables['finetune'] = predictor.finetuned().variables
  probe_scores = _probe_fn(predictor.heads.probe) if head == 'probe' else None
  embed = functools.partial(steps.embed_step, preprocessing_mode=predictor.preprocessing_mode)

  def fn(variables, images):
    def run(model, v):
      state = _State(params=v['params'], batch_stats=v['batch_stats'], apply_fn=model.apply)
      return embed(state, {'image': images})

    out = run(encoder.model, variables['encoder'])
    if head == 'finetune':
      logits = run(predictor.finetuned().model, variables['finetune'])['logits']
    elif head == 'classifier':
      logits = out['logits']
    else:
      scores = probe_scores(out['features'])
      logits = jnp.full((scores.shape[0], num_classes), -jnp.inf).at[:, predictor.heads.probe.labels].set(scores)
    return {'embedding': out['features'], 'probabilities': jax.nn.softmax(logits, axis=-1)}

  return fn, variables, head


class _State:
  """What ``steps.embed_step`` reads of a state (a plain object: traced once, not a pytree)."""

  def __init__(self, *, params, batch_stats, apply_fn):
    self.params, self.batch_stats, self.apply_fn = params, batch_stats, apply_fn


def metadata(predictor, head: str, fmt: str, embedding_dim: int) -> dict[str, Any]:
  shape = input_pipeline.GridSpec.from_config(predictor.config.data).image_shape
  return {
      'format': fmt,
      'head': head,
      'class_names': list(predictor.class_names),
      'input': {'name': 'images', 'shape': ['batch', *shape], 'dtype': 'uint8',
                'layout': f'{predictor.config.data.grid_rows}x{predictor.config.data.grid_cols} grid of '
                          f'{predictor.config.data.tile_size} px frames, RGB 0-255 (normalised inside)'},
      'outputs': {'embedding': ['batch', embedding_dim], 'probabilities': ['batch', len(predictor.class_names)]},
      'workdir': os.path.abspath(predictor.workdir) if predictor.workdir else None,
      'step': predictor.encoder.step,
      'views': {'num_test_clips': predictor.views.num_clips, 'local_views': predictor.views.num_local_views},
  }


def save_saved_model(predictor, out: str, head: Optional[str] = None) -> dict[str, Any]:
  """Writes a TF SavedModel (signature ``serving_default(images)``) and ``export.json`` into ``out``."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top
  fn, variables, head = export_fn(predictor, head)
  shape = input_pipeline.GridSpec.from_config(predictor.config.data).image_shape
  module = tf.Module()
  module.variables_tree = tf.nest.map_structure(tf.Variable, jax.tree.map(np.asarray, variables))
  converted = jax2tf.convert(fn, polymorphic_shapes=[None, '(b, ...)'], with_gradient=False)

  @tf.function(autograph=False, input_signature=[tf.TensorSpec((None,) + tuple(shape), tf.uint8, name='images')])
  def serve(images):
    return converted(module.variables_tree, images)

  module.serve = serve
  _check_writable(out)
  tf.saved_model.save(module, out, signatures={'serving_default': serve})
  dim = jax.eval_shape(fn, variables, jax.ShapeDtypeStruct((1,) + tuple(shape), jnp.uint8))['embedding'].shape[1]
  meta = metadata(predictor, head, 'saved_model', dim)
  with open(os.path.join(out, META_FILE), 'w') as f:
    json.dump(meta, f, indent=2)
  return meta


def _check_writable(out: str) -> None:
  try:
    os.makedirs(out, exist_ok=True)
    probe = os.path.join(out, '.write_test')
    with open(probe, 'w'):
      pass
    os.remove(probe)
  except OSError as e:
    raise errors.BadFilesError(f'{out}: cannot write the exported model there ({e.strerror}); pass a writable '
                               '--out.') from None
