"""Pure per-device step functions, pmapped by ``training.parallel``.

Dependencies are keyword-only and bound with ``functools.partial`` so that the
functions stay pure and testable on one device.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

from scfa_jax import losses
from scfa_jax.data import preprocessing
from scfa_jax.models import scfa
from scfa_jax.training import memory_queue
from scfa_jax.training import momentum
from scfa_jax.training.parallel import AXIS

Array = Any


class TrainState(train_state.TrainState):
  """Adam state, params, the BatchNorm running statistics, the optional SupCon memory queue and key encoder."""

  batch_stats: Any = None
  queue: Any = None  # memory_queue.Queue when config.loss.queue_size > 0
  momentum_params: Any = None  # training.momentum: the EMA of params (the key encoder) when config.model.momentum > 0


def stack_views(views: Array, labels: Array, *, video_major: bool = False) -> tuple[Array, Array]:
  """[B, V, H, W, C] views -> [V*B, H, W, C] images and [V*B] labels.

  View-major (row v*B + b) by default: the pmap path's per-device layout, which
  ``global_view_major`` and the memory queue rely on. Video-major (row b*V + v)
  keeps a video's views next to each other, so when the batch is split over
  devices by videos (the jit path) every device stacks only the videos it holds
  and no image crosses devices.
  """
  b, v = views.shape[:2]
  if video_major:
    return views.reshape((b * v,) + views.shape[2:]), jnp.repeat(labels, v)
  images = jnp.swapaxes(views, 0, 1).reshape((v * b,) + views.shape[2:])
  return images, jnp.tile(labels, v)


def video_to_view_major(x: Array, num_views: int) -> Array:
  """Video-major rows [B*V, ...] -> view-major rows [V*B, ...] (``stack_views``' two layouts)."""
  per_video = x.reshape((x.shape[0] // num_views, num_views) + x.shape[1:])
  return jnp.swapaxes(per_video, 0, 1).reshape(x.shape)


def global_view_major(x: Array, num_views: int, axis_name: str | None) -> Array:
  """This device's view-major rows [V*b, ...] -> the global batch's [V*B, ...] in the order one device has.

  Devices hold consecutive videos, so a plain all-gather would interleave views
  by device; reordering makes the result independent of the device count.
  """
  if axis_name is None:
    return x
  gathered = jax.lax.all_gather(x, axis_name)  # [D, V*b, ...]
  d, rows = gathered.shape[:2]
  per_view = gathered.reshape((d, num_views, rows // num_views) + x.shape[1:])
  return jnp.swapaxes(per_view, 0, 1).reshape((num_views * d * (rows // num_views),) + x.shape[1:])


def split_pretext_view(tree: Any, *, num_views: int, video_major: bool, has_pretext: bool) -> tuple[Any, Any]:
  """Rows of all V views (``stack_views`` order) -> (the contrastive views' rows, the pretext views' rows).

  The pretext view is every video's last view (``data.pretext``); without one the
  rows are all contrastive and the second part is None.
  """
  if not has_pretext:
    return tree, None

  def split(x: Array) -> tuple[Array, Array]:
    if video_major:
      per_video = x.reshape((-1, num_views) + x.shape[1:])
      return per_video[:, :-1].reshape((-1,) + x.shape[1:]), per_video[:, -1]
    per_view = x.reshape((num_views, -1) + x.shape[1:])
    return per_view[:-1].reshape((-1,) + x.shape[1:]), per_view[-1]

  pairs = jax.tree.map(split, tree)
  is_pair = lambda x: isinstance(x, tuple)
  return jax.tree.map(lambda p: p[0], pairs, is_leaf=is_pair), jax.tree.map(lambda p: p[1], pairs, is_leaf=is_pair)


def reversed_negatives(projections: Array, arrow: Array, axis_name: str | None) -> tuple[Array, Array, Array]:
  """The global batch's backwards-played pretext grids as negatives of every view (temporal hard negatives).

  A video played backwards shows the same objects as its positives, so only
  the direction of time tells them apart: contrasting against it makes the
  features encode that direction (``loss.pretext.reversed_negatives``).
  Returns ``losses.supcon_loss``'s ``memory`` triple (never a positive).
  """
  valid = arrow == 1  # a forwards or shuffled pretext grid (0 or NO_LABEL) is left out
  if axis_name is not None:
    projections = jax.lax.all_gather(projections, axis_name, tiled=True)
    valid = jax.lax.all_gather(valid, axis_name, tiled=True)
  return projections, jnp.full(valid.shape, memory_queue.NEGATIVE, jnp.int32), valid


def instance_ids(num_videos: int, axis_name: str | None) -> Array:
  """This device's videos' indices in the global batch: the labels of instance contrast (``loss.positives='video'``).

  Unique across devices and hosts (pmap's ``axis_index`` counts the devices of
  every host), so two videos on different devices never count as one; the jit
  path sees the global batch, whose row index is already unique.
  """
  offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * num_videos
  return offset + jnp.arange(num_videos, dtype=jnp.int32)


def compute_loss(outputs: dict[str, Array], labels: Array, loss_config: ml_collections.ConfigDict,
                 axis_name: str | None, queue: memory_queue.Queue | None = None,
                 keys: dict[str, Array] | None = None,
                 negatives: tuple[Array, Array, Array] | None = None) -> tuple[Array, dict[str, Array]]:
  """The configured loss (this device's share of the global mean) and its extra metrics.

  Fused samples with per-pathway heads add each weighted pathway's own SupCon term
  (``scfa.head_aux_weights``: ``loss.pathway_aux_weight`` for the global grid,
  ``loss.local_aux_weight`` for the local views) over the same two samplings
  (without the memory queue, which holds fused projections).
  ``keys``: the momentum encoder's outputs of the same images; their projections
  are then the contrasts (``losses.supcon_loss``'s ``keys``). ``negatives``:
  extra (projections, labels, valid) contrasts after the queue's (``reversed_negatives``).
  """
  memory = memory_queue.contrasts(queue)
  if negatives is not None:
    memory = negatives if memory is None else tuple(jnp.concatenate([a, b]) for a, b in zip(memory, negatives))
  if loss_config.name == 'supcon':
    supcon = functools.partial(losses.supcon_loss, labels=labels, temperature=loss_config.temperature,
                               base_temperature=loss_config.base_temperature, axis_name=axis_name)
    loss, aux = supcon(outputs['projection'], memory=memory,
                       keys=None if keys is None else keys['projection'])
    if 'pathway_projections' in outputs:  # fused samples: each pathway's own term, over the same samplings
      weights = scfa.head_aux_weights(loss_config, outputs['pathway_projections'].shape[1])
      for head, weight in enumerate(weights):
        head_keys = None if keys is None else keys['pathway_projections'][:, head]
        loss = loss + weight * supcon(outputs['pathway_projections'][:, head], keys=head_keys)[0]
    return loss, aux
  if loss_config.name == 'cross_entropy':
    return losses.cross_entropy_loss(outputs['logits'], labels, axis_name=axis_name)
  raise ValueError(f"Unknown config.loss.name {loss_config.name!r}; expected 'supcon' or 'cross_entropy'.")


def train_step(state: TrainState, batch: dict[str, Array], *, loss_config: ml_collections.ConfigDict,
               preprocessing_mode: str, learning_rate_fn: Callable[[Array], Array],
               axis_name: str | None = AXIS,
               skip_nonfinite: bool = False,
               momentum_fn: Callable[[Array], Array] | None = None) -> tuple[TrainState, dict[str, Array]]:
  """One optimiser step on this device's part of the global batch.

  Gradients are *summed* across devices because each device's loss is its
  share of the global mean (see ``scfa_jax.losses``): the update equals the
  single-device update on the whole global batch.

  With ``skip_nonfinite`` an update whose loss or gradient norm is not finite
  is dropped on the device (only ``step`` advances, so the data order and the
  step numbering stay those of the run) and ``metrics['skipped']`` is 1.

  With a key encoder (``state.momentum_params``) the keys are its projections of
  the same images (BatchNorm on the batch, as the online encoder's; its running
  statistics are not kept: evaluation uses the online encoder), they fill the
  queue, and after the update it moves towards the new parameters by
  ``momentum_fn(step)`` (``training.momentum``).
  """
  # The jit path (axis_name None) splits the global batch over devices by videos: stacked video-major,
  # each device encodes only its own videos. SupCon and BatchNorm do not depend on the row order.
  video_major = axis_name is None
  pretext_labels = batch.get('pretext')  # {task: [b]}: the last view of every video is its pretext view
  all_views = batch['views'].shape[1]
  num_views = all_views - (pretext_labels is not None)  # the contrastive views
  instance = loss_config.get('positives', 'label') == 'video'  # instance contrast never reads batch['label']
  per_video = instance_ids(batch['views'].shape[0], axis_name) if instance else batch['label']
  images, labels = stack_views(batch['views'], per_video, video_major=video_major)
  images = preprocessing.normalize(images, preprocessing_mode)
  split = functools.partial(split_pretext_view, num_views=all_views, video_major=video_major,
                            has_pretext=pretext_labels is not None)
  labels = split(labels)[0]

  keys = None
  if state.momentum_params is not None:
    keys, _ = state.apply_fn({'params': state.momentum_params, 'batch_stats': state.batch_stats}, images,
                             train=True, mutable=['batch_stats'])
    keys = jax.lax.stop_gradient(split(keys)[0])

  def loss_fn(params):
    outputs, updates = state.apply_fn({'params': params, 'batch_stats': state.batch_stats}, images,
                                      train=True, mutable=['batch_stats'])
    outputs, pretext_outputs = split(outputs)
    negatives = None
    if pretext_labels is not None and loss_config.pretext.get('reversed_negatives', False):
      negatives = reversed_negatives(pretext_outputs['projection'], pretext_labels['arrow_of_time'], axis_name)
    loss, aux = compute_loss(outputs, labels, loss_config, axis_name, state.queue, keys, negatives)
    if pretext_labels is not None:
      pretext_term, pretext_aux = losses.pretext_loss(pretext_outputs['pretext_logits'], pretext_labels,
                                                      dict(loss_config.pretext), axis_name=axis_name)
      loss, aux = loss + pretext_term, {**aux, **pretext_aux}
    return loss, (updates['batch_stats'], aux, outputs['projection'])

  (loss, (batch_stats, aux, projections)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  if axis_name is not None:
    grads = jax.lax.psum(grads, axis_name)
    loss = jax.lax.psum(loss, axis_name)
    # A no-op with synchronised BatchNorm; otherwise keeps replicas identical.
    batch_stats = jax.lax.pmean(batch_stats, axis_name)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  if keys is not None:
    new_state = new_state.replace(momentum_params=momentum.update(state.momentum_params, new_state.params,
                                                                  momentum_fn(state.step)))
    projections = keys['projection']  # the queue holds keys: all from (nearly) the same encoder
  if state.queue is not None:  # every device pushes the whole global batch, so the queues stay identical
    projections = jax.lax.stop_gradient(projections)
    if instance:  # batch indices repeat every step: queued views are negatives only
      labels = jnp.full_like(labels, memory_queue.NEGATIVE)
    if video_major:  # the queue holds the global batch view-major on both paths
      projections, labels = video_to_view_major(projections, num_views), video_to_view_major(labels, num_views)
    new_state = new_state.replace(queue=memory_queue.enqueue(
        state.queue, global_view_major(projections, num_views, axis_name),
        global_view_major(labels, num_views, axis_name)))
  metrics = {
      'loss': loss,
      'learning_rate': learning_rate_fn(state.step),
      'grad_norm': optax.tree.norm(grads),
      **aux,
  }
  if keys is not None:
    metrics['momentum'] = momentum_fn(state.step)
  if skip_nonfinite:
    new_state, metrics['skipped'] = skip_if_nonfinite(state, new_state, metrics['loss'], metrics['grad_norm'])
  return new_state, metrics


def skip_if_nonfinite(state: TrainState, new_state: TrainState, loss: Array,
                      grad_norm: Array) -> tuple[TrainState, Array]:
  """``new_state`` if loss and gradient norm are finite, else ``state`` one step on; and 1.0 if skipped.

  Loss and gradients are already reduced over devices, so every replica takes the same branch.
  """
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  unchanged = state.replace(step=state.step + 1)
  kept = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, unchanged)
  return kept, 1.0 - finite.astype(jnp.float32)


def embed_step(state: TrainState, batch: dict[str, Array], *, preprocessing_mode: str) -> dict[str, Array]:
  """Inference-mode features (and logits, if the model has a classifier) of one eval batch."""
  images = preprocessing.normalize(batch['image'], preprocessing_mode)
  outputs = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats}, images, train=False)
  return {k: v for k, v in outputs.items() if k in ('features', 'projection', 'logits')}
