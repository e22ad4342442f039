"""Which videos of the train split carry a label a run may read: ``config.data.label_fraction``.

A point of the label-efficiency curve trains (or fits the probe, kNN memory,
retrieval gallery and fine-tune) on a stratified, seeded fraction of the train
split's labels. The fraction is a set of *positions* in the split's stored
order (the order ``input_pipeline`` and ``evaluation.embeddings`` read it in,
files unshuffled), so training and evaluation pick the same videos without
storing anything. Pure functions, except :func:`split_labels`, which reads the
labels of a prepared split.

A dataset without labels (an unlabelled ``video_folder``) has no ``label``
feature; :func:`has_labels` says so and the pipeline gives every video the
label :data:`UNLABELLED` (-1), which nothing that reads labels may see:
``config_validation`` refuses a supervised loss on such a dataset.
"""

from __future__ import annotations

from typing import Any, Mapping

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from scfa_jax import errors
from scfa_jax.data import records
from scfa_jax.data import traced

LABEL_KEY = 'label'
UNLABELLED = -1  # The label the input pipeline gives every video of a dataset without labels.


def has_labels(info: tfds.core.DatasetInfo) -> bool:
  """Whether the dataset stores a label per video (an unlabelled video folder stores none)."""
  return LABEL_KEY in info.features


def class_names(info: tfds.core.DatasetInfo) -> list[str]:
  """The label names in label order; [] for a dataset without labels."""
  return list(info.features[LABEL_KEY].names) if has_labels(info) else []


def reads_labels(config: ml_collections.ConfigDict) -> bool:
  """Whether training reads labels: cross-entropy, or SupCon whose positives are the labels (the default)."""
  if config.loss.name == 'cross_entropy':
    return True
  return config.loss.get('positives', 'label') == 'label'


def fraction_of(config: ml_collections.ConfigDict) -> float:
  return float(config.data.get('label_fraction', 1.0))


def per_class_counts(counts: np.ndarray, fraction: float) -> np.ndarray:
  """Labelled videos kept of each class: round(fraction x class size), halves up (may be 0: see problems)."""
  return np.floor(fraction * np.asarray(counts, np.float64) + 0.5).astype(np.int64)


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
  """Sorted positions of the labelled videos: per class, a seeded random round(fraction x n) of its videos.

  Args:
    labels: the split's labels in stored order, int [N].
    fraction: in (0, 1]; 1 keeps every position.
    seed: ``config.seed``; class c's draw is seeded by (seed, c) alone, so
      adding a class does not change the others' picks.
  """
  labels = np.asarray(labels)
  if fraction >= 1.0:
    return np.arange(len(labels))
  keep = []
  classes = np.unique(labels)
  for label, count in zip(classes, per_class_counts([np.sum(labels == c) for c in classes], fraction)):
    positions = np.flatnonzero(labels == label)
    rng = np.random.default_rng([int(seed), int(label)])
    keep.append(rng.permutation(positions)[:count])
  return np.sort(np.concatenate(keep)) if keep else np.zeros((0,), np.int64)


def fraction_problems(fraction: float, class_counts: Mapping[Any, int], *, dataset: str, split: str) -> list[str]:
  """The fraction against the split's class sizes: every class must keep a labelled video."""
  if fraction >= 1.0 or not class_counts:
    return []
  names = list(class_counts)
  kept = per_class_counts([class_counts[n] for n in names], fraction)
  empty = [f'{n} ({class_counts[n]} videos)' for n, k in zip(names, kept) if k == 0]
  if not empty:
    return []
  smallest = min(class_counts[n] for n in names)
  return [f'config.data.label_fraction={fraction!r} is not allowed: it leaves {len(empty)} class(es) of split '
          f'{split!r} of {dataset} without a labelled video ({", ".join(empty[:5])}); expected >= '
          f'{0.5 / smallest:.4g} (half a video of the smallest class, {smallest} videos).']


def split_labels(builder: tfds.core.DatasetBuilder, split: str, frames_key: str) -> np.ndarray:
  """The labels of ``split`` in stored order (one pass that skips decoding the frames)."""
  labels = records.read_undecoded(builder, split, frames_key).map(traced.as_written(lambda ex: ex[LABEL_KEY]))
  return np.fromiter((int(x) for x in labels.as_numpy_iterator()), np.int64)


def labelled_positions(builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict) -> np.ndarray | None:
  """The train split's positions whose labels this run reads, or None for all of them (fraction 1).

  Raises:
    errors.ConfigError: the fraction leaves a class of the train split without a labelled video.
  """
  fraction = fraction_of(config)
  if fraction >= 1.0 or not has_labels(builder.info):
    return None
  labels = split_labels(builder, config.data.train_split, config.data.frames_key)
  names = class_names(builder.info)
  counts = np.bincount(labels, minlength=len(names))
  problems = fraction_problems(fraction, {names[c]: int(n) for c, n in enumerate(counts) if n},
                               dataset=builder.info.full_name, split=config.data.train_split)
  if problems:
    raise errors.ConfigError(problems[0])
  return stratified_subset(labels, fraction, config.seed)


def summary(positions: np.ndarray | None, labels: np.ndarray, fraction: float, seed: int) -> dict[str, Any]:
  """The results.json ``labels`` entry: what the label-reading protocols were fitted on."""
  labels = np.asarray(labels)
  kept = labels if positions is None else labels[positions]
  return {'fraction': float(fraction), 'seed': int(seed), 'num_labelled': int(len(kept)),
          'num_train': int(len(labels)), 'min_per_class': int(np.bincount(kept).min()) if len(kept) else 0}
