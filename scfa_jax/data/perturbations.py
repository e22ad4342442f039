"""Test-time perturbations of a video, for the robustness report (``config.eval.robustness``).

Two kinds, both pure TF functions usable inside ``tf.data.map``:

* temporal ones change the video's frame sequence *before* views are sampled
  (``frames``): frames dropped at random, a change of playback speed halfway
  through, a segment cut out;
* photometric ones change the finished grid image (``pixels``): brightness,
  contrast, a colour cast.

Random choices are seeded by the video's own content (a hash of its first
encoded frame) and the perturbation, so every run perturbs every video the
same way and the numbers are reproducible.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import tensorflow as tf

Frames = tf.Tensor  # 1-D string tensor: one encoded frame per element, in time order


def _video_seed(encoded: Frames, salt: int) -> tf.Tensor:
  key = tf.strings.to_hash_bucket_fast(encoded[0], 2**62)
  return tf.stack([key, tf.constant(salt, tf.int64)])


def _round_half_up(x: tf.Tensor) -> tf.Tensor:
  """int32 of x rounded to the nearest integer, halves up (``tf.math.round`` rounds halves to even, so 25% of
  6 and of 10 frames would round in opposite directions)."""
  return tf.cast(tf.floor(x + 0.5), tf.int32)


def drop_frames(encoded: Frames, fraction: float) -> Frames:
  """Removes ``fraction`` of the frames at random, keeping the order.

  Keeps ``n * (1 - fraction)`` frames rounded half up (at least one): 25% of 6
  frames keeps 5, of 10 keeps 8.
  """
  n = tf.shape(encoded)[0]
  keep = tf.maximum(_round_half_up(tf.cast(n, tf.float64) * (1.0 - fraction)), 1)
  priorities = tf.random.stateless_uniform([n], seed=_video_seed(encoded, 1))
  kept = tf.sort(tf.argsort(priorities)[:keep])
  return tf.gather(encoded, kept)


def change_speed(encoded: Frames, factor: float) -> Frames:
  """Plays the video ``factor`` times as fast: 2.0 keeps every other frame, 0.5 shows each frame twice.

  Frame ``i`` of the result is frame ``floor(i * factor)``, for every ``i``
  that stays inside the video (``ceil(n / factor)`` frames): at 2x a video of
  5 frames keeps 0, 2, 4, its last frame included.
  """
  n = tf.shape(encoded)[0]
  length = tf.maximum(tf.cast(tf.math.ceil(tf.cast(n, tf.float64) / factor), tf.int32), 1)
  positions = tf.cast(tf.floor(tf.range(length, dtype=tf.float64) * factor), tf.int32)
  return tf.gather(encoded, tf.minimum(positions, n - 1))


def change_speed_halfway(encoded: Frames, factor: float) -> Frames:
  """The first half at normal speed, the second half ``factor`` times as fast.

  Evaluation samples its frames evenly over the whole video, which undoes a
  change of speed over all of it (``change_speed``); a change halfway moves
  the samples: at 2x the first half gets 2/3 of them, at 0.5x 1/3.
  """
  n = tf.shape(encoded)[0]
  half = tf.minimum(n // 2, n - 1)  # the second half keeps at least one frame
  return tf.concat([encoded[:half], change_speed(encoded[half:], factor)], axis=0)


def cut_segment(encoded: Frames, fraction: float) -> Frames:
  """Removes one contiguous run of ``fraction`` of the frames at a random position (at least one frame is kept)."""
  n = tf.shape(encoded)[0]
  length = tf.minimum(_round_half_up(tf.cast(n, tf.float64) * fraction), n - 1)
  # Starts 0 .. n - length: the cut may take the video's last frames (maxval is exclusive).
  start = tf.random.stateless_uniform([], seed=_video_seed(encoded, 2), maxval=n - length + 1, dtype=tf.int32)
  return tf.concat([encoded[:start], encoded[start + length:]], axis=0)


def shift_brightness(images: tf.Tensor, delta: float) -> tf.Tensor:
  """Adds ``delta`` (a fraction of full scale, e.g. -0.3) to every pixel of uint8 images."""
  return _to_uint8(tf.cast(images, tf.float32) + 255.0 * delta)


def scale_contrast(images: tf.Tensor, factor: float) -> tf.Tensor:
  """Scales each image's pixels about its mean grey by ``factor``."""
  x = tf.cast(images, tf.float32)
  mean = tf.reduce_mean(x, axis=[-3, -2, -1], keepdims=True)
  return _to_uint8(mean + factor * (x - mean))


def colour_cast(images: tf.Tensor, strength: float) -> tf.Tensor:
  """A warm cast: red scaled by 1 + strength, blue by 1 - strength (negative strength: a cold cast)."""
  gains = tf.constant([1.0 + strength, 1.0, 1.0 - strength], tf.float32)
  return _to_uint8(tf.cast(images, tf.float32) * gains)


def _to_uint8(x: tf.Tensor) -> tf.Tensor:
  return tf.cast(tf.clip_by_value(tf.math.round(x), 0.0, 255.0), tf.uint8)


@dataclasses.dataclass(frozen=True)
class Perturbation:
  """One perturbation at one setting: a change of the frame sequence and/or of the grid pixels."""

  name: str  # the perturbation, e.g. 'drop_frames'
  setting: str  # its setting as reported, e.g. '25%'
  frames: Optional[Callable[[Frames], Frames]] = None
  pixels: Optional[Callable[[tf.Tensor], tf.Tensor]] = None


def standard_perturbations() -> list[Perturbation]:
  """The robustness report's perturbations and settings."""
  return [
      Perturbation('drop_frames', '25%', frames=lambda f: drop_frames(f, 0.25)),
      Perturbation('drop_frames', '50%', frames=lambda f: drop_frames(f, 0.5)),
      Perturbation('speed', '0.5x 2nd half', frames=lambda f: change_speed_halfway(f, 0.5)),
      Perturbation('speed', '2x 2nd half', frames=lambda f: change_speed_halfway(f, 2.0)),
      Perturbation('cut_segment', '25%', frames=lambda f: cut_segment(f, 0.25)),
      Perturbation('brightness', '-30%', pixels=lambda x: shift_brightness(x, -0.3)),
      Perturbation('brightness', '+30%', pixels=lambda x: shift_brightness(x, 0.3)),
      Perturbation('contrast', '0.5x', pixels=lambda x: scale_contrast(x, 0.5)),
      Perturbation('contrast', '1.5x', pixels=lambda x: scale_contrast(x, 1.5)),
      Perturbation('colour_cast', 'warm 0.2', pixels=lambda x: colour_cast(x, 0.2)),
      Perturbation('colour_cast', 'cold 0.2', pixels=lambda x: colour_cast(x, -0.2)),
  ]
