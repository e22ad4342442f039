"""tf.data pipelines: dataset -> temporal views -> grid images -> per-host batches.

Grids leave the host as uint8 (4x less to copy than float32); pixel
normalisation happens on the device inside the step.

Training data is a pure function of (seed, epoch, position in epoch): each
epoch reshuffles with its own seed and each example's views are sampled with a
stateless seed derived from its position. A resumed run therefore sees exactly
the batches an uninterrupted run would have seen, skipping the consumed part
of the epoch before anything is decoded.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import ml_collections
import tensorflow as tf
import tensorflow_datasets as tfds

from scfa_jax.data import grid as grid_lib
from scfa_jax.data import sampling


@dataclasses.dataclass(frozen=True)
class GridSpec:
  """How a view is aggregated into one image."""

  rows: int
  cols: int
  tile_size: int

  @property
  def num_frames(self) -> int:
    return self.rows * self.cols

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return (self.rows * self.tile_size, self.cols * self.tile_size, 3)

  @classmethod
  def from_config(cls, data_config: ml_collections.ConfigDict) -> 'GridSpec':
    return cls(data_config.grid_rows, data_config.grid_cols, data_config.tile_size)


def decode_frames(encoded: tf.Tensor, tile_size: int) -> tf.Tensor:
  """Decodes encoded frames [N] (JPEG/PNG strings) to uint8 tiles [N, tile, tile, 3]."""

  def decode_one(data: tf.Tensor) -> tf.Tensor:
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image = tf.image.resize(image, (tile_size, tile_size), method='area')
    return tf.cast(tf.round(image), tf.uint8)

  return tf.map_fn(decode_one, encoded, fn_output_signature=tf.TensorSpec((tile_size, tile_size, 3), tf.uint8))


def make_grid(encoded: tf.Tensor, indices: tf.Tensor, spec: GridSpec, shuffle_seed: tf.Tensor | None = None) -> tf.Tensor:
  """One view: gathers the sampled frames, decodes them and tiles them into a grid.

  ``shuffle_seed`` destroys the temporal order (the shuffled-frame baseline).
  """
  if shuffle_seed is not None:
    indices = tf.random.experimental.stateless_shuffle(indices, seed=shuffle_seed)
  tiles = decode_frames(tf.gather(encoded, indices), spec.tile_size)
  tiles = tf.ensure_shape(tiles, (spec.num_frames, spec.tile_size, spec.tile_size, 3))
  return grid_lib.frames_to_grid(tiles, spec.rows, spec.cols)


def preprocess_train(example: dict, seed: tf.Tensor, *, data_config: ml_collections.ConfigDict,
                     num_views: int = 2) -> dict:
  """``num_views`` independently sampled grids of one video: {'views': [V, H, W, 3], 'label'}."""
  spec = GridSpec.from_config(data_config)
  encoded = example[data_config.frames_key]
  num_frames = tf.shape(encoded)[0]
  views = []
  for v in range(num_views):
    view_seed = tf.random.experimental.stateless_fold_in(seed, v)
    indices = sampling.sample_indices(num_frames, spec.num_frames, data_config.train_sampling, view_seed)
    shuffle_seed = tf.random.experimental.stateless_fold_in(view_seed, 1000) if data_config.shuffle_frames else None
    views.append(make_grid(encoded, indices, spec, shuffle_seed))
  return {'views': tf.stack(views), 'label': tf.cast(example['label'], tf.int32)}


def preprocess_eval(example: dict, *, data_config: ml_collections.ConfigDict, seed: int = 0) -> dict:
  """One deterministic grid per video: {'image': [H, W, 3], 'label'}."""
  spec = GridSpec.from_config(data_config)
  encoded = example[data_config.frames_key]
  num_frames = tf.shape(encoded)[0]
  fixed_seed = tf.constant([seed, 0], tf.int64)
  indices = sampling.sample_indices(num_frames, spec.num_frames, data_config.eval_sampling, fixed_seed)
  shuffle_seed = fixed_seed + 1 if data_config.shuffle_frames else None
  return {'image': make_grid(encoded, indices, spec, shuffle_seed), 'label': tf.cast(example['label'], tf.int32)}


def process_splits(builder: tfds.core.DatasetBuilder, split: str) -> list[str]:
  """The split cut into one disjoint, complete part per JAX process (host)."""
  if split not in builder.info.splits:
    raise ValueError(f'Dataset {builder.info.full_name} has no split {split!r}; it has {sorted(builder.info.splits)}.')
  return tfds.even_splits(split, n=jax.process_count(), drop_remainder=False)


def _read(builder: tfds.core.DatasetBuilder, split: str, data_config: ml_collections.ConfigDict) -> tf.data.Dataset:
  return builder.as_dataset(
      split=split,
      shuffle_files=False,  # file order fixed; shuffling is seeded below
      decoders={data_config.frames_key: tfds.decode.SkipDecoding()},
      read_config=tfds.ReadConfig(try_autocache=False),
  )


def steps_per_epoch(builder: tfds.core.DatasetBuilder, split: str, local_batch_size: int) -> int:
  """Full local batches per epoch that *every* host can serve (hosts stay in lockstep)."""
  smallest = min(builder.info.splits[s].num_examples for s in process_splits(builder, split))
  steps = smallest // local_batch_size
  if steps == 0:
    raise ValueError(
        f'Split {split!r} of {builder.info.full_name} has {smallest} examples per host, fewer than one '
        f'batch of {local_batch_size}: lower config.train.batch_size.')
  return steps


def create_train_dataset(
    builder: tfds.core.DatasetBuilder,
    data_config: ml_collections.ConfigDict,
    *,
    local_batch_size: int,
    seed: int,
    start_step: int = 0,
    num_views: int = 2,
) -> tf.data.Dataset:
  """Endless training batches {'views': uint8 [B, V, H, W, 3], 'label': int32 [B]} for this host.

  Batches are a pure function of (seed, epoch, position); starting at
  ``start_step`` skips exactly the examples already trained on.
  """
  split = process_splits(builder, data_config.train_split)[jax.process_index()]
  per_epoch = steps_per_epoch(builder, data_config.train_split, local_batch_size) * local_batch_size
  base = _read(builder, split, data_config)
  if data_config.cache:
    base = base.cache()
  start_epoch, skip_in_first = divmod(start_step * local_batch_size, per_epoch)
  host_seed = seed * 1_000_003 + jax.process_index()

  def epoch_dataset(epoch: tf.Tensor) -> tf.data.Dataset:
    ds = base.shuffle(data_config.shuffle_buffer, seed=host_seed * 10_007 + epoch, reshuffle_each_iteration=False)
    ds = ds.take(per_epoch).enumerate()
    ds = ds.map(lambda index, example: (tf.stack([host_seed + epoch, index]), example))
    return ds.skip(tf.where(epoch == start_epoch, tf.constant(skip_in_first, tf.int64), tf.constant(0, tf.int64)))

  ds = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch_dataset)
  ds = ds.map(lambda s, ex: preprocess_train(ex, s, data_config=data_config, num_views=num_views),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(local_batch_size, drop_remainder=True)
  return ds.prefetch(tf.data.AUTOTUNE)


def create_eval_dataset(
    builder: tfds.core.DatasetBuilder,
    split: str,
    data_config: ml_collections.ConfigDict,
    *,
    local_batch_size: int,
) -> tuple[tf.data.Dataset, int]:
  """One pass over ``split`` for this host, padded so every host runs the same batches.

  Returns:
    The dataset of {'image', 'label', 'mask'} batches (mask False on padding)
    and the number of batches.
  """
  parts = process_splits(builder, split)
  largest = max(builder.info.splits[s].num_examples for s in parts)
  num_batches = max(1, math.ceil(largest / local_batch_size))
  ds = _read(builder, parts[jax.process_index()], data_config)
  ds = ds.map(lambda ex: preprocess_eval(ex, data_config=data_config), num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.map(lambda ex: {**ex, 'mask': tf.constant(True)})
  padding = {k: tf.zeros(spec.shape, spec.dtype) for k, spec in ds.element_spec.items()}
  ds = ds.concatenate(tf.data.Dataset.from_tensors(padding).repeat())
  ds = ds.take(num_batches * local_batch_size).batch(local_batch_size)
  return ds.prefetch(tf.data.AUTOTUNE), num_batches
