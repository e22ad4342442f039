"""Temporal sampling: which frame indices of a video make up one view.

Pure TF functions of (number of frames, seed), usable inside ``tf.data.map``.
Every method returns ``num_samples`` int32 indices in ``[0, num_frames)``, in
temporal order; a video shorter than ``num_samples`` repeats frames in order
instead of failing.

* ``segment`` (training default): one random frame per equal segment.
* ``random_sorted``: distinct random frames, sorted (the authors' code).
* ``uniform`` (evaluation): the centre of every segment, deterministic.
* :func:`multi_clip_indices`: K deterministic, interleaved uniform views per
  video for test-time averaging.
* :func:`local_run_indices`: a short run of (nearly) consecutive frames from a
  random start (or a given ``position``, for evaluation), for the optional
  local views of multi-scale training.
* :func:`spanned_indices`: any training method, applied to a random stretch of
  the video (``data.view_span``: CVRL-style temporal crops).
"""

from __future__ import annotations

import tensorflow as tf

from scfa_jax import config as base_config

METHODS = base_config.SAMPLING_METHODS


def segment_indices(num_frames: tf.Tensor, num_samples: int, seed: tf.Tensor) -> tf.Tensor:
  """One random frame from each of ``num_samples`` equal segments (TSN-style).

  Covers the whole duration while still varying between views. Segment
  boundaries are whole frames, so with at least ``num_samples`` frames every
  segment is non-empty and the indices are distinct.
  """
  n = tf.cast(num_frames, tf.int64)
  edges = tf.range(num_samples + 1, dtype=tf.int64) * n // num_samples
  starts, lengths = edges[:-1], tf.maximum(edges[1:] - edges[:-1], 1)
  offsets = tf.random.stateless_uniform([num_samples], seed=seed) * tf.cast(lengths, tf.float32)
  offsets = tf.minimum(tf.cast(offsets, tf.int64), lengths - 1)  # float rounding never reaches the next segment
  return _clip(starts + offsets, num_frames)


def uniform_indices(num_frames: tf.Tensor, num_samples: int, offset: float = 0.5) -> tf.Tensor:
  """Evenly spaced, deterministic: the centre (offset 0.5) of each equal segment."""
  n = tf.cast(num_frames, tf.float32)
  positions = (tf.range(num_samples, dtype=tf.float32) + offset) * n / num_samples
  return _clip(tf.floor(positions), num_frames)


def multi_clip_indices(num_frames: tf.Tensor, num_samples: int, num_clips: int) -> tf.Tensor:
  """``num_clips`` deterministic views [K, num_samples] for test-time averaging.

  View k takes the frame at fraction ``(k + 0.5) / K`` of every one of the
  ``num_samples`` equal segments, so the views interleave and are distinct
  wherever a segment holds at least K frames. K = 1 is :func:`uniform_indices`.
  """
  if num_clips < 1:
    raise ValueError(f'num_clips must be >= 1, got {num_clips}.')
  return tf.stack([uniform_indices(num_frames, num_samples, (k + 0.5) / num_clips) for k in range(num_clips)])


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
  indices = tf.sort(tf.concat([tf.cast(chosen, tf.int32), repeats], axis=0))[:num_samples]
  return tf.ensure_shape(indices, [num_samples])  # static length: views unroll one decode per frame


def local_run_indices(num_frames: tf.Tensor, num_samples: int, stride: int, seed: tf.Tensor | None = None, *,
                      position: float | None = None) -> tf.Tensor:
  """``num_samples`` frames ``stride`` apart from a random start: a short, local stretch of the video.

  Where the video is shorter than the run (``(num_samples - 1) * stride + 1``
  frames) the stride shrinks to what fits, down to consecutive frames; a video
  with fewer than ``num_samples`` frames shows all of them from the first,
  then repeats its last frame.
  """
  if num_samples < 1 or stride < 1:
    raise ValueError(f'A local run needs num_samples >= 1 and stride >= 1, got {num_samples} and {stride}.')
  n = tf.cast(num_frames, tf.int64)
  fits = tf.maximum(n - 1, 0) // max(num_samples - 1, 1)  # the largest stride that keeps the run inside the video
  step = tf.clip_by_value(fits, 1, stride)
  room = tf.maximum(n - (num_samples - 1) * step, 1)  # possible start frames
  if position is None:
    start = tf.random.stateless_uniform([], seed=seed, minval=0, maxval=room, dtype=tf.int64)
  else:  # deterministic (evaluation): ``position`` of the way through the possible starts, 0.5 = centred
    start = tf.cast(tf.floor(position * tf.cast(room - 1, tf.float32) + 0.5), tf.int64)
  return _clip(start + tf.range(num_samples, dtype=tf.int64) * step, num_frames)


def sample_indices(num_frames: tf.Tensor, num_samples: int, method: str, seed: tf.Tensor) -> tf.Tensor:
  """Dispatches to the sampling ``method`` (see METHODS)."""
  if method == 'segment':
    return segment_indices(num_frames, num_samples, seed)
  if method == 'random_sorted':
    return random_sorted_indices(num_frames, num_samples, seed)
  if method == 'uniform':
    return uniform_indices(num_frames, num_samples)
  raise ValueError(f'Unknown frame sampling {method!r}; expected one of {METHODS}.')


def span_window(num_frames: tf.Tensor, num_samples: int, span: tuple[float, float],
                seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """(start, length) of a random stretch covering a fraction of the video drawn uniformly from ``span``.

  The start is uniform over the positions where the stretch fits, so two views
  drawn independently start a random gap apart, small gaps the likeliest (the
  gap of two uniform starts has a triangular, decreasing density: CVRL's
  argument for a decreasing distribution of temporal distances). A stretch never
  holds fewer than ``num_samples`` frames while the video has them, so the view
  repeats frames only where the whole video would.
  """
  n = tf.cast(num_frames, tf.int64)
  draws = tf.random.stateless_uniform([2], seed=tf.random.experimental.stateless_fold_in(seed, 2000))
  fraction = span[0] + (span[1] - span[0]) * draws[0]
  length = tf.cast(tf.round(fraction * tf.cast(n, tf.float32)), tf.int64)
  length = tf.clip_by_value(length, tf.minimum(tf.cast(num_samples, tf.int64), n), tf.maximum(n, 1))
  room = tf.maximum(n - length + 1, 1)  # possible start frames
  start = tf.minimum(tf.cast(draws[1] * tf.cast(room, tf.float32), tf.int64), room - 1)
  return start, tf.maximum(length, 1)


def spanned_indices(num_frames: tf.Tensor, num_samples: int, method: str, seed: tf.Tensor,
                    span: tuple[float, float] = (1.0, 1.0)) -> tf.Tensor:
  """``method``'s indices within a random stretch of the video (:func:`span_window`), in whole-video frames.

  ``span=(1, 1)`` is ``sample_indices`` itself, with the same seed use, so the
  paper's views are unchanged; the stretch draws from a seed folded from ``seed``.
  """
  if tuple(float(x) for x in span) == (1.0, 1.0):
    return sample_indices(num_frames, num_samples, method, seed)
  start, length = span_window(num_frames, num_samples, span, seed)
  within = sample_indices(length, num_samples, method, seed)
  return _clip(tf.cast(within, tf.int64) + start, num_frames)


def _clip(positions: tf.Tensor, num_frames: tf.Tensor) -> tf.Tensor:
  last = tf.maximum(tf.cast(num_frames, tf.int32) - 1, 0)
  return tf.clip_by_value(tf.cast(positions, tf.int32), 0, last)
