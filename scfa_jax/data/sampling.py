"""Temporal sampling: which frame indices of a video make up one view.

Pure TF functions of (number of frames, seed), usable inside ``tf.data.map``.
Every method returns ``num_samples`` int32 indices in ``[0, num_frames)``, in
temporal order; a video shorter than ``num_samples`` repeats frames in order
instead of failing.
"""

from __future__ import annotations

import tensorflow as tf

METHODS = ('segment', 'random_sorted', 'uniform')


def segment_indices(num_frames: tf.Tensor, num_samples: int, seed: tf.Tensor) -> tf.Tensor:
  """One random frame from each of ``num_samples`` equal segments (TSN-style).

  Covers the whole duration while still varying between views.
  """
  n = tf.cast(num_frames, tf.float32)
  starts = tf.range(num_samples, dtype=tf.float32) * n / num_samples
  offsets = tf.random.stateless_uniform([num_samples], seed=seed) * (n / num_samples)
  return _clip(tf.floor(starts + offsets), num_frames)


def uniform_indices(num_frames: tf.Tensor, num_samples: int, offset: float = 0.5) -> tf.Tensor:
  """Evenly spaced, deterministic: the centre (offset 0.5) of each equal segment."""
  n = tf.cast(num_frames, tf.float32)
  positions = (tf.range(num_samples, dtype=tf.float32) + offset) * n / num_samples
  return _clip(tf.floor(positions), num_frames)


def random_sorted_indices(num_frames: tf.Tensor, num_samples: int, seed: tf.Tensor) -> tf.Tensor:
  """Distinct random indices, sorted (what the authors' code samples).

  Distinct where the video has enough frames; otherwise every frame once plus
  random repeats, still sorted.
  """
  num_frames = tf.cast(num_frames, tf.int32)
  # Random priorities: the num_samples smallest pick a uniform random subset.
  priorities = tf.random.stateless_uniform([tf.maximum(num_frames, 1)], seed=seed)
  chosen = tf.argsort(priorities)[:num_samples]
  repeats = tf.random.stateless_uniform(
      [tf.maximum(num_samples - num_frames, 0)], seed=seed + 1, maxval=tf.maximum(num_frames, 1), dtype=tf.int32)
  return tf.sort(tf.concat([tf.cast(chosen, tf.int32), repeats], axis=0))[:num_samples]


def sample_indices(num_frames: tf.Tensor, num_samples: int, method: str, seed: tf.Tensor) -> tf.Tensor:
  """Dispatches to the sampling ``method`` (see METHODS)."""
  if method == 'segment':
    return segment_indices(num_frames, num_samples, seed)
  if method == 'random_sorted':
    return random_sorted_indices(num_frames, num_samples, seed)
  if method == 'uniform':
    return uniform_indices(num_frames, num_samples)
  raise ValueError(f'Unknown frame sampling {method!r}; expected one of {METHODS}.')


def _clip(positions: tf.Tensor, num_frames: tf.Tensor) -> tf.Tensor:
  last = tf.maximum(tf.cast(num_frames, tf.int32) - 1, 0)
  return tf.clip_by_value(tf.cast(positions, tf.int32), 0, last)
