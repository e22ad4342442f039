"""Losses: supervised contrastive (SupCon, Khosla et al. 2020, L_out) and cross-entropy.

Both return the *device's share* of the global mean when ``axis_name`` is given:
the sum over this device's anchors divided by the number of valid anchors in
the whole global batch. Summing the shares (``lax.psum``) gives the global
loss, and summing per-device gradients gives the gradient of the global loss,
which is exactly what one device would compute on the whole batch.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import optax

Array = Any


def _global_sum(x: Array, axis_name: Optional[str]) -> Array:
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def supcon_loss(
    projections: Array,
    labels: Array,
    *,
    temperature: float = 0.07,
    base_temperature: float = 0.07,
    valid: Optional[Array] = None,
    axis_name: Optional[str] = None,
    memory: Optional[tuple[Array, Array, Array]] = None,
    keys: Optional[Array] = None,
) -> tuple[Array, dict[str, Array]]:
  """Supervised contrastive loss over all views in the (global) batch.

  For anchor i, positives P(i) are all *other* projections with the same label
  (the other view of the same video included) and the denominator runs over all
  other projections A(i). Anchors with no positive are left out of the mean,
  so a class seen once in the batch never produces NaN.

  Args:
    projections: [n, d] unit-norm projections of this device (all views stacked).
    labels: [n] integer labels of those rows.
    temperature: softmax temperature t.
    base_temperature: the loss is scaled by t / base_temperature (SupContrast).
    valid: optional [n] bool; False rows (padding) are neither anchors nor contrasts.
    axis_name: pmap axis; anchors are contrasted against the batch gathered from all devices.
    memory: optional (projections [K, d], labels [K], valid [K]) of earlier batches
      (``training.memory_queue``): extra contrasts for every anchor, positives by
      label, never anchors themselves, and no gradient flows into them.
    keys: optional [n, d] projections of the same rows by the momentum encoder
      (``training.momentum``): the anchors are contrasted against the keys
      instead of against each other (row i's own key is left out, as i itself
      is), without gradient into the keys (MoCo's queries and keys).

  Returns:
    (loss share, aux) where aux holds 'num_anchors' (global count of anchors with a positive).
  """
  z = projections.astype(jnp.float32)
  labels = labels.astype(jnp.int32)
  n = z.shape[0]
  if valid is None:
    valid = jnp.ones((n,), bool)
  contrasts = z if keys is None else jax.lax.stop_gradient(keys.astype(jnp.float32))
  if axis_name is None:
    z_all, labels_all, valid_all, offset = contrasts, labels, valid, 0
  else:
    z_all = jax.lax.all_gather(contrasts, axis_name, tiled=True)
    labels_all = jax.lax.all_gather(labels, axis_name, tiled=True)
    valid_all = jax.lax.all_gather(valid, axis_name, tiled=True)
    offset = jax.lax.axis_index(axis_name) * n
  if memory is not None:  # appended after the batch: no memory index is ever an anchor's own
    memory_z, memory_labels, memory_valid = memory
    z_all = jnp.concatenate([z_all, jax.lax.stop_gradient(memory_z.astype(jnp.float32))])
    labels_all = jnp.concatenate([labels_all, memory_labels.astype(jnp.int32)])
    valid_all = jnp.concatenate([valid_all, memory_valid])

  logits = (z @ z_all.T) / temperature  # [n, N]
  is_self = jnp.arange(z_all.shape[0])[None, :] == (offset + jnp.arange(n))[:, None]
  contrast = valid_all[None, :] & ~is_self
  positives = contrast & (labels[:, None] == labels_all[None, :])

  # Masked entries get a large finite negative (not -inf): exp() makes them exactly
  # 0, and a row with nothing to contrast stays finite in both passes.
  logits = jnp.where(contrast, logits, -1e9)
  logits = logits - jax.lax.stop_gradient(jnp.max(logits, axis=1, keepdims=True))
  log_denominator = jax.nn.logsumexp(logits, axis=1, keepdims=True)
  log_prob = jnp.where(contrast, logits - log_denominator, 0.0)

  num_positives = positives.sum(axis=1)
  is_anchor = valid & (num_positives > 0)
  mean_log_prob_pos = jnp.where(positives, log_prob, 0.0).sum(axis=1) / jnp.maximum(num_positives, 1)
  per_anchor = -(temperature / base_temperature) * mean_log_prob_pos
  num_anchors = _global_sum(is_anchor.sum(), axis_name)
  loss = jnp.where(is_anchor, per_anchor, 0.0).sum() / jnp.maximum(num_anchors, 1)
  return loss, {'num_anchors': num_anchors}


def cross_entropy_loss(
    logits: Array,
    labels: Array,
    *,
    valid: Optional[Array] = None,
    axis_name: Optional[str] = None,
) -> tuple[Array, dict[str, Array]]:
  """Softmax cross-entropy, as this device's share of the global mean."""
  if valid is None:
    valid = jnp.ones(labels.shape, bool)
  per_example = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
  count = _global_sum(valid.sum(), axis_name)
  loss = jnp.where(valid, per_example, 0.0).sum() / jnp.maximum(count, 1)
  correct = _global_sum(jnp.where(valid, jnp.argmax(logits, -1) == labels, False).sum(), axis_name)
  return loss, {'accuracy': correct / jnp.maximum(count, 1)}


def pretext_loss(
    logits: dict[str, Array],
    labels: dict[str, Array],
    weights: dict[str, float],
    *,
    axis_name: Optional[str] = None,
) -> tuple[Array, dict[str, Array]]:
  """sum over tasks of weight x the cross-entropy of the task's head on its pretext views.

  ``logits`` {task: [n, classes]} and ``labels`` {task: [n]} (``data.pretext``;
  a negative label, ``NO_LABEL``, leaves that view out of the task's mean).
  Returns this device's share and each task's accuracy as ``pretext_<task>_accuracy``.
  """
  total, aux = jnp.zeros((), jnp.float32), {}
  for task, task_logits in logits.items():
    task_labels = labels[task].astype(jnp.int32)
    loss, metrics = cross_entropy_loss(task_logits, jnp.maximum(task_labels, 0), valid=task_labels >= 0,
                                       axis_name=axis_name)
    total = total + weights[task] * loss
    aux[f'pretext_{task}_accuracy'] = metrics['accuracy']
  return total, aux
