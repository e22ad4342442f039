"""A cross-batch memory: the last K projections (with labels) as extra SupCon contrasts.

SupCon needs many negatives and, with many classes, same-class positives in the
batch; an accelerator that holds only a small batch gives few of either. The
queue keeps the projections of the last few steps' *global* batches (every
device contributes through the all-gather, so the queue is identical on every
device) and the loss contrasts each anchor against them too: same-label entries
as positives, the rest as negatives, never as anchors and without gradient
(MoCo / "cross-batch memory", Wang et al. 2020). It is part of the train state,
so it is checkpointed and a resumed run continues with exactly the queue it had.

Pure functions of dicts of arrays: {'projections': [K, d] float32,
'labels': [K] int32, 'valid': [K] bool}, newest entries first.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

Queue = dict[str, Any]
# The label of entries that are never a positive: instance contrast queues its views with it, since a video's
# index in the batch (its instance label) names another video at the next step.
NEGATIVE = -1


def init(size: int, dim: int) -> Queue:
  """An empty queue of ``size`` entries of ``dim``-dimensional projections (host arrays)."""
  if size <= 0:
    raise ValueError(f'A memory queue needs size > 0, got {size}.')
  return {
      'projections': np.zeros((size, dim), np.float32),
      'labels': np.zeros((size,), np.int32),
      'valid': np.zeros((size,), bool),
  }


def enqueue(queue: Queue, projections: Any, labels: Any) -> Queue:
  """Pushes a batch [n, d] in front; the oldest n entries fall off the end (first in, first out)."""
  size = queue['labels'].shape[0]
  return {
      'projections': jnp.concatenate([projections.astype(jnp.float32), queue['projections']])[:size],
      'labels': jnp.concatenate([labels.astype(jnp.int32), queue['labels']])[:size],
      'valid': jnp.concatenate([jnp.ones(labels.shape, bool), queue['valid']])[:size],
  }


def contrasts(queue: Queue | None) -> tuple[Any, Any, Any] | None:
  """The (projections, labels, valid) triple ``losses.supcon_loss`` takes as ``memory``."""
  if queue is None:
    return None
  return queue['projections'], queue['labels'], queue['valid']
