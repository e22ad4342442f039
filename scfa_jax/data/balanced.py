"""Class-balanced training batches: M videos of each of B/M classes per host batch.

With many classes and a modest batch most SupCon anchors have no positive but
their own other view (51 classes, 64 videos: most classes appear once). Here
every local batch holds ``M = config.data.balanced_batches_per_class`` videos
of each of ``B/M`` distinct classes, so every anchor has at least M-1 other
videos of its class.

The stream is a pure function of (seed, host, step, slot), as the shuffled
stream is of (seed, host, epoch, position), so a resumed run sees exactly the
batches an uninterrupted one would have:

* step t draws its B/M classes uniformly from the classes on this host, with a
  stateless seed folded from t;
* the j-th draw of a class (counted from step 0) takes the video at place
  ``j mod n`` of that class's ``j div n``-th pass, each pass a fresh seeded
  permutation of its n videos; resuming at step s counts the draws of steps
  before s, without reading any video;
* each example's views are seeded by its position ``t * B + slot``.

Classes are thus sampled uniformly (a small class's videos recur more often
than a large class's). To index videos directly, this host's part of the
split is held in memory, still encoded (as ``config.data.cache`` would).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from scfa_jax.data import traced

_CHOICE, _PASS, _VIEWS = 0, 1, 2  # Stream ids folded into the host's seed.


def _classes_of_step(step: tf.Tensor, num_present: int, classes_per_batch: int, seed: tf.Tensor) -> tf.Tensor:
  """Indices (into the classes present on this host) of step ``step``'s classes: distinct, seeded by the step."""
  order = tf.random.experimental.stateless_shuffle(tf.range(num_present, dtype=tf.int64),
                                                   seed=tf.random.experimental.stateless_fold_in(seed, step))
  return order[:classes_per_batch]


def _draws_before(start_step: int, num_present: int, classes_per_batch: int, per_class: int,
                  seed: tf.Tensor) -> tf.Tensor:
  """int64 [P]: videos of each present class drawn in steps [0, start_step)."""
  zeros = tf.zeros([num_present], tf.int64)
  if start_step == 0:
    return zeros
  steps = tf.data.Dataset.range(start_step).map(traced.as_written(
      lambda t: _classes_of_step(t, num_present, classes_per_batch, seed))).batch(4096)
  return steps.reduce(zeros, traced.as_written(lambda acc, chosen: acc + per_class * tf.math.bincount(
      tf.reshape(chosen, [-1]), minlength=num_present, maxlength=num_present, dtype=tf.int64)))


def balanced_examples(split_examples: tf.data.Dataset, num_examples: int, *, frames_key: str, per_class: int,
                      local_batch_size: int, host_seed: tf.Tensor, start_step: int) -> tf.data.Dataset:
  """Endless (seed, example) pairs from ``start_step`` on, ``local_batch_size`` per step in balanced groups.

  Args:
    split_examples: this host's part of the split, {frames_key: encoded frames, 'label'} (read once, here).
    num_examples: its length.
    frames_key: ``config.data.frames_key``.
    per_class: M, videos of each class in a batch.
    local_batch_size: B, a multiple of M.
    host_seed: int64 [2], (config.seed, host index).
    start_step: steps already trained (resuming).

  Returns:
    Elements (int64 [2] view seed, example); batching them by ``local_batch_size`` gives the balanced batches,
    classes in consecutive groups of M.

  Raises:
    ValueError: B is not a multiple of M, or this host holds fewer than B/M classes.
  """
  if per_class < 1 or local_batch_size % per_class:
    raise ValueError(f'config.data.balanced_batches_per_class={per_class} must divide the per-host batch of '
                     f'{local_batch_size} videos.')
  classes_per_batch = local_batch_size // per_class
  everything = split_examples.ragged_batch(num_examples).get_single_element()
  frames, labels = everything[frames_key], everything['label'].numpy()
  present = np.unique(labels)
  if len(present) < classes_per_batch:
    raise ValueError(f'Balanced batches of {classes_per_batch} classes x {per_class} videos need {classes_per_batch} '
                     f'classes on this host, which has {len(present)}: raise config.data.balanced_batches_per_class.')
  members = tf.ragged.constant([np.flatnonzero(labels == c) for c in present], dtype=tf.int64)  # [P, n_c]
  sizes = tf.constant([int(np.sum(labels == c)) for c in present], tf.int64)
  num_present = len(present)
  seed = lambda stream: tf.random.experimental.stateless_fold_in(host_seed, stream)  # noqa: E731
  draws = _draws_before(start_step, num_present, classes_per_batch, per_class, seed(_CHOICE))

  def step_slots(counts: tf.Tensor, step: tf.Tensor):
    """Scan over steps: each slot's class and its draw number; the counts carry the draws so far."""
    chosen = _classes_of_step(step, num_present, classes_per_batch, seed(_CHOICE))
    slot_class = tf.repeat(chosen, per_class)
    draw = tf.gather(counts, slot_class) + tf.tile(tf.range(per_class, dtype=tf.int64), [classes_per_batch])
    counts += per_class * tf.math.bincount(chosen, minlength=num_present, maxlength=num_present, dtype=tf.int64)
    return counts, (step * local_batch_size + tf.range(local_batch_size, dtype=tf.int64), slot_class, draw)

  def example(position: tf.Tensor, class_index: tf.Tensor, draw: tf.Tensor):
    size = sizes[class_index]
    pass_seed = tf.random.experimental.stateless_fold_in(
        tf.random.experimental.stateless_fold_in(seed(_PASS), class_index), draw // size)
    order = tf.random.experimental.stateless_shuffle(tf.range(size), seed=pass_seed)
    index = members[class_index][order[draw % size]]
    view_seed = tf.random.experimental.stateless_fold_in(seed(_VIEWS), position)
    return view_seed, {frames_key: frames[index], 'label': tf.gather(everything['label'], index)}

  ds = tf.data.Dataset.range(start_step, 2**62).scan(draws, traced.as_written(step_slots)).unbatch()
  return ds.map(traced.as_written(example))
