"""Temporal pretext tasks on grids: a change of frame indices before tiling, and the label it implies.

Self-supervised video learners predict how a clip was played (Misra et al.
2016: shuffled order; Wei et al. 2018: arrow of time; Benaim et al. 2020 /
Wang et al. 2020: playback speed). On a grid each task is only a different
list of frame indices, so the transformed view costs one more grid image per
video and nothing else:

* arrow of time: the sampled indices in reverse (label 1, with probability
  ``backwards_share``) or not (label 0);
* playback speed: ``num_samples`` frames ``k`` apart from a random start, label
  ``k - 1`` for strides ``1..speed_classes`` (a class is drawn among the strides
  the video is long enough for, so the stride in the label is the stride used);
* shuffled order: a random permutation of the indices (label 1) or not (0).

With several tasks on, one pretext view per video carries all of them (speed
picks the frames, then reversal, then shuffling, each drawn on its own); a
shuffled view has no arrow of time, so its arrow label is ``NO_LABEL`` and the
loss skips it. With fused samples (``data.fuse_local_views``) the pretext
view is a fused sample, and :func:`local_run` plays each of its local views as
its grid was played (same speed, direction and shuffling), so the labels hold
for every pathway. Pure TF functions of (number of frames, seed), for ``tf.data.map``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import ml_collections
import tensorflow as tf

from scfa_jax.data import sampling

TASKS = ('arrow_of_time', 'speed', 'shuffle')
NO_LABEL = -1  # a view the task says nothing about (the arrow of a shuffled view): left out of its loss


@dataclasses.dataclass(frozen=True)
class Spec:
  """Which tasks a pretext view carries (``config.loss.pretext`` weights > 0)."""

  arrow_of_time: bool = False
  speed_classes: int = 0  # 0 = no speed task; else strides 1..speed_classes
  shuffle: bool = False
  backwards_share: float = 0.5  # the probability that a pretext view is played backwards (arrow of time)

  @classmethod
  def from_config(cls, loss_config: ml_collections.ConfigDict) -> Optional['Spec']:
    """The tasks with a positive weight, or None when every weight is 0 (no pretext view)."""
    pretext = loss_config.get('pretext')
    if pretext is None:
      return None
    spec = cls(arrow_of_time=pretext.arrow_of_time > 0, shuffle=pretext.shuffle > 0,
               speed_classes=pretext.speed_classes if pretext.speed > 0 else 0,
               backwards_share=float(pretext.get('backwards_share', 0.5)))
    return spec if spec.tasks() else None

  def tasks(self) -> tuple[str, ...]:
    return tuple(t for t, on in zip(TASKS, (self.arrow_of_time, self.speed_classes > 0, self.shuffle)) if on)


def reverse(indices: tf.Tensor) -> tf.Tensor:
  """The same frames played backwards."""
  return tf.reverse(indices, axis=[0])


def shuffle(indices: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """The same frames in a random order."""
  return tf.random.experimental.stateless_shuffle(indices, seed=seed)


def strided_run(num_frames: tf.Tensor, num_samples: int, stride: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """``num_samples`` frames ``stride`` apart from a random start that keeps them inside the video."""
  n = tf.cast(num_frames, tf.int32)
  room = tf.maximum(n - (num_samples - 1) * stride, 1)
  start = tf.random.stateless_uniform([], seed=seed, minval=0, maxval=room, dtype=tf.int32)
  return tf.clip_by_value(start + tf.range(num_samples, dtype=tf.int32) * stride, 0, tf.maximum(n - 1, 0))


def fitting_strides(num_frames: tf.Tensor, num_samples: int, speed_classes: int) -> tf.Tensor:
  """How many of the strides 1..speed_classes fit ``num_samples`` frames into the video (at least 1)."""
  fits = tf.maximum(tf.cast(num_frames, tf.int32) - 1, 0) // max(num_samples - 1, 1)
  return tf.clip_by_value(fits, 1, speed_classes)


def sample(num_frames: tf.Tensor, num_samples: int, spec: Spec, seed: tf.Tensor,
           method: str = 'segment') -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
  """The frame indices of one pretext view and its label per task (int32; ``NO_LABEL`` = none).

  Without the speed task the frames are sampled by ``method`` (the training views' sampling).
  """
  seeds = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(4)]
  labels = {}
  if spec.speed_classes:
    stride = 1 + tf.random.stateless_uniform([], seed=seeds[0], minval=0,
                                             maxval=fitting_strides(num_frames, num_samples, spec.speed_classes),
                                             dtype=tf.int32)
    indices = strided_run(num_frames, num_samples, stride, seeds[1])
    labels['speed'] = stride - 1
  else:
    indices = sampling.sample_indices(num_frames, num_samples, method, seeds[1])
  if spec.arrow_of_time:
    backwards = tf.random.stateless_uniform([], seed=seeds[2]) < spec.backwards_share
    indices = tf.where(backwards, reverse(indices), indices)
    labels['arrow_of_time'] = tf.cast(backwards, tf.int32)
  if spec.shuffle:
    shuffled = tf.random.stateless_uniform([], seed=seeds[3]) < 0.5
    indices = tf.where(shuffled, shuffle(indices, tf.random.experimental.stateless_fold_in(seeds[3], 1)), indices)
    labels['shuffle'] = tf.cast(shuffled, tf.int32)
    if spec.arrow_of_time:
      labels['arrow_of_time'] = tf.where(shuffled, NO_LABEL, labels['arrow_of_time'])
  return indices, labels


def local_run(num_frames: tf.Tensor, num_samples: int, stride: int, labels: dict[str, tf.Tensor],
              seed: tf.Tensor) -> tf.Tensor:
  """A fused pretext view's local run: ``num_samples`` frames, played as :func:`sample`'s labels say its grid was.

  At speed class ``k - 1`` the frames are ``stride * k`` apart (clipped to the
  video, as :func:`strided_run`); otherwise the training views' local run
  (``sampling.local_run_indices``). Then reversed where the arrow label is 1 and
  shuffled where the shuffle label is 1, so a backwards sample shows no
  forwards pathway (which would let the features tell it from its video by
  the local view alone, or hide the order from the arrow head).
  """
  seeds = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(2)]
  if 'speed' in labels:
    run = strided_run(num_frames, num_samples, stride * (labels['speed'] + 1), seeds[0])
  else:
    run = tf.cast(sampling.local_run_indices(num_frames, num_samples, stride, seeds[0]), tf.int32)
  if 'arrow_of_time' in labels:
    run = tf.where(labels['arrow_of_time'] == 1, reverse(run), run)
  if 'shuffle' in labels:
    run = tf.where(labels['shuffle'] == 1, shuffle(run, seeds[1]), run)
  return run
