"""One graph from a uint8 grid batch to the embedding and class probabilities, for serving stacks.

``export_fn`` is that graph in JAX: pixel normalisation, the encoder in
inference mode (``steps.embed_step``, as evaluation runs it) and the head (the
fine-tuned or cross-entropy classifier's softmax, or the saved linear probe),
all inside. ``save_saved_model`` converts it with ``jax.experimental.jax2tf``
(native serialization: the StableHLO of the JAX function, lowered for CPU,
CUDA and TPU and run by TensorFlow's XLA) into a TF SavedModel whose batch
dimension is free; ``export_onnx`` writes the same graph as ONNX. Beside it,
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
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from scfa_jax import errors
from scfa_jax.data import input_pipeline
from scfa_jax.training import steps

EXPORTABLE_HEADS = ('finetune', 'classifier', 'probe')
PLATFORMS = ('cpu', 'cuda', 'tpu')  # jax2tf's native serialization platforms: what a SavedModel runs on
META_FILE = 'export.json'


def _probe_fn(probe, num_classes: int) -> Callable[[jax.Array], jax.Array]:
  """features -> [B, num_classes] logits of the saved probe; ``-inf`` for classes it never saw.

  Written without batch-sized constants (a gather from the scores padded with
  one ``-inf`` column), so the batch dimension stays symbolic in ONNX too.
  """
  mean, scale = jnp.asarray(probe.mean, jnp.float32), jnp.asarray(probe.scale, jnp.float32)
  coef, intercept = jnp.asarray(probe.coef, jnp.float32), jnp.asarray(probe.intercept, jnp.float32)
  labels = np.asarray(probe.labels)
  column = np.full(num_classes, len(labels), np.int32)  # the -inf column, except where the probe has a class
  column[labels] = np.arange(len(labels))

  def logits(features):
    z = ((features - mean) / scale) @ coef.T + intercept
    z = jnp.concatenate([jnp.zeros_like(z), z], axis=1) if coef.shape[0] == 1 else z
    return jnp.take(jnp.pad(z, ((0, 0), (0, 1)), constant_values=-jnp.inf), column, axis=1)

  return logits


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
  probe_scores = _probe_fn(predictor.heads.probe, num_classes) if head == 'probe' else None
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
      logits = probe_scores(out['features'])
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


def save_saved_model(predictor, out: str, head: Optional[str] = None,
                     platforms: Sequence[str] = PLATFORMS) -> dict[str, Any]:
  """Writes a TF SavedModel (signature ``serving_default(images)``) and ``export.json`` into ``out``.

  The graph holds the model lowered for each of ``platforms`` (jax2tf's native
  serialization: one XlaCallModule whose ``platforms`` attribute lists them), so
  TensorFlow Serving runs it on a CPU, GPU (CUDA) or TPU host alike; a host of
  another kind refuses it when it loads. A batch of 0 images gives empty outputs.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top
  platforms = check_platforms(platforms)
  fn, variables, head = export_fn(predictor, head)
  shape = input_pipeline.GridSpec.from_config(predictor.config.data).image_shape
  dims = output_dims(fn, variables, shape)
  module = tf.Module()
  module.variables_tree = tf.nest.map_structure(tf.Variable, jax.tree.map(np.asarray, variables))
  converted = jax2tf.convert(fn, polymorphic_shapes=[None, '(b, ...)'], with_gradient=False,
                             native_serialization_platforms=platforms)

  @tf.function(autograph=False, input_signature=[tf.TensorSpec((None,) + tuple(shape), tf.uint8, name='images')])
  def serve(images):
    def empty():  # the lowered graph assumes a batch of at least 1
      return {k: tf.zeros([0, d], tf.float32) for k, d in dims.items()}

    return tf.cond(tf.shape(images)[0] > 0, lambda: converted(module.variables_tree, images), empty)

  module.serve = serve
  _check_writable(out)
  tf.saved_model.save(module, out, signatures={'serving_default': serve})
  meta = metadata(predictor, head, 'saved_model', dims['embedding'])
  meta['platforms'] = list(platforms)
  write_metadata(out, meta)
  return meta


def check_platforms(platforms: Sequence[str]) -> tuple[str, ...]:
  platforms = tuple(p.strip().lower() for p in platforms if p.strip())
  unknown = [p for p in platforms if p not in PLATFORMS]
  if unknown or not platforms:
    raise errors.ConfigError(f'--platforms={",".join(platforms)}: expected some of {",".join(PLATFORMS)}.')
  return platforms


def output_dims(fn, variables, shape: Sequence[int]) -> dict[str, int]:
  """{'embedding': D, 'probabilities': C}: the graph's output widths."""
  out = jax.eval_shape(fn, variables, jax.ShapeDtypeStruct((1,) + tuple(shape), jnp.uint8))
  return {k: int(v.shape[1]) for k, v in out.items()}


def write_metadata(out: str, meta: dict[str, Any]) -> None:
  with open(os.path.join(out, META_FILE), 'w') as f:
    json.dump(meta, f, indent=2)


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
