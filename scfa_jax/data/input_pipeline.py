"""tf.data pipelines: dataset -> temporal views -> grid images -> per-host batches.

Grids leave the host as uint8 (4x less to copy than float32); pixel
normalisation happens on the device inside the step.

Training data is a pure function of (seed, epoch, position in epoch): each
epoch reshuffles with its own seed and each example's views are sampled with a
stateless seed derived from its position. A resumed run therefore sees exactly
the batches an uninterrupted run would have seen, skipping the consumed part
of the epoch before anything is decoded. Class-balanced batches
(``scfa_jax.data.balanced``) keep the same guarantee by (seed, step, slot).
"""

from __future__ import annotations

import math

import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from scfa_jax import config_validation
from scfa_jax.data import balanced
from scfa_jax.data import labels as labels_lib
from scfa_jax.data import layout
from scfa_jax.data import perturbations
from scfa_jax.data import pretext
from scfa_jax.data import records
from scfa_jax.data import sampling
from scfa_jax.data import traced
from scfa_jax.data import views

GridSpec = layout.GridSpec  # Re-exported: callers size models from the pipeline's grid.


def _view_seeds(seed: tf.Tensor, num_views: int) -> tf.Tensor:
  """[V, 2] independent stateless seeds, one per view of an example."""
  return tf.stack([tf.random.experimental.stateless_fold_in(seed, v) for v in range(num_views)])


def _maybe_shuffle_frames(indices: tf.Tensor, seeds: tf.Tensor, data_config: ml_collections.ConfigDict) -> tf.Tensor:
  """The shuffled-frame baseline: destroys the temporal order within each view."""
  if not data_config.shuffle_frames:
    return indices
  return tf.stack([
      tf.random.experimental.stateless_shuffle(indices[v],
                                               seed=tf.random.experimental.stateless_fold_in(seeds[v], 1000))
      for v in range(indices.shape[0])
  ])


def _local_runs(num_frames: tf.Tensor, seeds: tf.Tensor, data_config: ml_collections.ConfigDict, *,
                training: bool) -> tf.Tensor:
  """[L, n] frame indices of the local views, one run per seed, before any shuffling (see :func:`_local_views`)."""
  spec = layout.local_grid_spec(data_config)
  count = seeds.shape[0]
  return tf.stack([
      sampling.local_run_indices(num_frames, spec.num_frames, data_config.local_frames_stride, seeds[v])
      if training else
      sampling.local_run_indices(num_frames, spec.num_frames, data_config.local_frames_stride,
                                 position=(v + 0.5) / count)
      for v in range(count)])


def _local_views(encoded: tf.Tensor, seeds: tf.Tensor, data_config: ml_collections.ConfigDict, *,
                 training: bool, runs: tf.Tensor | None = None) -> tf.Tensor:
  """One local grid per seed (``layout.local_grid_spec``): a short run of frames tiled at higher detail.

  Training draws each run's start from its seed and augments as the global
  views do, except for random crops where ``data.augment.crop_local_views`` is
  False (a crop is resized back to the tile, which blurs the 1-pixel detail a
  local view is for); evaluation places run l of L at (l + 0.5) / L of the
  video, without augmentation. The seeds also drive the shuffled-frames baseline.
  ``runs`` [L, n]: frames chosen by the caller instead (a fused pretext sample's).
  """
  spec = layout.local_grid_spec(data_config)
  if runs is None:
    runs = _maybe_shuffle_frames(_local_runs(tf.shape(encoded)[0], seeds, data_config, training=training), seeds,
                                 data_config)
  if training:
    return views.make_views(encoded, runs, spec, aug_config=local_augment(data_config.augment), seeds=seeds)
  return views.make_views(encoded, runs, spec)


def local_augment(aug_config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``data.augment`` as local views get it: without random crops where ``crop_local_views`` is False."""
  if aug_config.get('crop_local_views', True):
    return aug_config
  local = aug_config.copy_and_resolve_references()
  local.random_crop = False
  return local


def preprocess_train(example: dict, seed: tf.Tensor, *, data_config: ml_collections.ConfigDict,
                     num_views: int = 2, num_local_views: int = 0, pretext_spec: pretext.Spec | None = None) -> dict:
  """``num_views`` global and ``num_local_views`` local grids of one video, each sampled (and augmented) on its own.

  Global views spread the grid's frames over the whole video; local views
  (``layout.local_grid_spec``) show a short run of frames at larger tiles in an
  image of the same size. View v folds v into the example's seed, so the
  global views do not change when local views are added. With
  ``data.fuse_local_views`` the views are ``num_views`` fused samples instead:
  sample s is global view s followed by its own ``num_local_views`` local views.

  Args:
    example: {frames_key: encoded frames [T], 'label'}.
    seed: int64 [2], the example's stateless seed; each view folds in its index.
    data_config: ``config.data``.
    num_views: global temporal views (fused: samples) per video (2 for SupCon).
    num_local_views: local views per video, after the global ones (fused: per sample).
    pretext_spec: temporal pretext tasks (``loss.pretext``): one more global grid (fused: one
      more sample), the last view, sampled and transformed for them, and its labels.

  Returns:
    {'views': uint8 [num_views + num_local_views (+ 1 pretext view), H, W, 3], global views first
    (fused: [num_views, 1 + num_local_views, H, W, 3]), 'label': int32, and with pretext tasks
    'pretext': {task: int32}}.
  """
  spec = GridSpec.from_config(data_config)
  encoded = example[data_config.frames_key]
  num_frames = tf.shape(encoded)[0]
  if is_fused(data_config):
    num_local_views *= num_views
  seeds = _view_seeds(seed, num_views + num_local_views)
  span = tuple(data_config.get('view_span', (1.0, 1.0)))
  indices = tf.stack([sampling.spanned_indices(num_frames, spec.num_frames, data_config.train_sampling, seeds[v], span)
                      for v in range(num_views)])
  indices = _maybe_shuffle_frames(indices, seeds[:num_views], data_config)
  grids = views.make_views(encoded, indices, spec, aug_config=data_config.augment, seeds=seeds[:num_views])
  if num_local_views:
    local = _local_views(encoded, seeds[num_views:], data_config, training=True)
    grids = fuse_samples(grids, local) if is_fused(data_config) else tf.concat([grids, local], axis=0)
  out = {'views': grids, 'label': tf.cast(example['label'], tf.int32)}
  if pretext_spec is not None:  # its own seed, after every other view's: those stay what they were
    pretext_seed = tf.random.experimental.stateless_fold_in(seed, num_views + num_local_views)
    view, out['pretext'] = _pretext_view(encoded, pretext_seed, data_config, pretext_spec)
    out['views'] = tf.concat([grids, view], axis=0)
  return out


def _pretext_view(encoded: tf.Tensor, seed: tf.Tensor, data_config: ml_collections.ConfigDict,
                  pretext_spec: pretext.Spec) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
  """One pretext view [1, H, W, 3] (fused: a fused sample [1, 1 + L, H, W, 3]) and its labels (``pretext.sample``).

  A fused sample's local views are played as its grid (``pretext.local_run``),
  each on a seed folded from ``seed``.
  """
  spec = GridSpec.from_config(data_config)
  num_frames = tf.shape(encoded)[0]
  indices, labels = pretext.sample(num_frames, spec.num_frames, pretext_spec, seed, data_config.train_sampling)
  grid = views.make_views(encoded, indices[None], spec, aug_config=data_config.augment, seeds=seed[None])
  if not is_fused(data_config):
    return grid, labels
  local_spec = layout.local_grid_spec(data_config)
  seeds = _view_seeds(tf.random.experimental.stateless_fold_in(seed, 1), data_config.num_local_views)
  runs = tf.stack([pretext.local_run(num_frames, local_spec.num_frames, data_config.local_frames_stride, labels,
                                     seeds[l]) for l in range(data_config.num_local_views)])
  return fuse_samples(grid, _local_views(encoded, seeds, data_config, training=True, runs=runs)), labels


def is_fused(data_config: ml_collections.ConfigDict) -> bool:
  """Whether a sample is one global grid fused with local views (``data.fuse_local_views``)."""
  return bool(data_config.get('fuse_local_views', False))


def fuse_samples(global_views: tf.Tensor, local_views: tf.Tensor) -> tf.Tensor:
  """Global grids [S, H, W, 3] and local views [S*L, ...] (sample-major) -> fused samples [S, 1 + L, H, W, 3]."""
  num_samples = global_views.shape[0]
  local = tf.reshape(local_views, tf.concat([[num_samples, -1], tf.shape(local_views)[1:]], axis=0))
  return tf.concat([global_views[:, None], local], axis=1)


def preprocess_eval(example: dict, *, data_config: ml_collections.ConfigDict, num_clips: int = 1,
                    num_local_views: int = 0, seed: int = 0) -> dict:
  """Deterministic, un-augmented grids of one video.

  ``example[data_config.frames_key]`` holds the stored (encoded) frames or,
  for inference on video files, decoded uint8 frames [T, h, w, 3]: both go
  through the same sampling and tiling.

  Returns:
    {'image': uint8 [H, W, 3] (num_clips == 1, ``data_config.eval_sampling``)
    or [K + L, H, W, 3] (num_clips = K > 1, ``sampling.multi_clip_indices``, or
    num_local_views = L > 0: then L local views follow, their runs starting
    (l + 0.5) / L of the way through the video), 'label': int32}.
    Fused samples (``data.fuse_local_views``; ``num_local_views`` must be 0):
    [P, H, W, 3] for K = 1 or [K, P, H, W, 3], P = 1 + data.num_local_views;
    with L = data.num_local_views, clip k's local run l starts (k*L + l + 0.5) / (K*L)
    of the way through the video (K = L = 1: the centred run).
  """
  fused = is_fused(data_config)
  num_local_views = _eval_local_views(data_config, num_clips, num_local_views)
  spec = GridSpec.from_config(data_config)
  encoded = example[data_config.frames_key]
  num_frames = tf.shape(encoded)[0]
  seeds = _view_seeds(tf.constant([seed, 0], tf.int64), num_clips + num_local_views)
  indices = _eval_global_indices(num_frames, seeds, data_config, num_clips)
  if data_config.shuffle_frames:
    # A frame order of its own per video (keyed by its first frame's bytes): one fixed order for every
    # test video would be a consistent re-layout that a probe could still read time from.
    first = encoded[0] if encoded.dtype == tf.string else tf.io.serialize_tensor(encoded[0])  # decoded frames
    video_key = tf.strings.to_hash_bucket_fast(first, 2**62)
    seeds = _view_seeds(tf.stack([tf.constant(seed, tf.int64), video_key]), num_clips + num_local_views)
  grids = views.make_views(encoded, _maybe_shuffle_frames(indices, seeds[:num_clips], data_config), spec)
  if num_local_views:
    local = _local_views(encoded, seeds[num_clips:], data_config, training=False)
    grids = fuse_samples(grids, local) if fused else tf.concat([grids, local], axis=0)
  single = num_clips == 1 and (fused or not num_local_views)
  return {'image': grids[0] if single else grids, 'label': tf.cast(example['label'], tf.int32)}


def _eval_local_views(data_config: ml_collections.ConfigDict, num_clips: int, num_local_views: int) -> int:
  """The local views :func:`preprocess_eval` makes: the fused samples' own, or ``num_local_views``."""
  if not is_fused(data_config):
    return num_local_views
  if num_local_views:
    raise ValueError('Fused samples carry their own local views (data.num_local_views); '
                     'extra eval local views (eval.local_views) must be 0.')
  return num_clips * data_config.num_local_views


def _eval_global_indices(num_frames: tf.Tensor, seeds: tf.Tensor, data_config: ml_collections.ConfigDict,
                         num_clips: int) -> tf.Tensor:
  """[K, N] frame indices of :func:`preprocess_eval`'s global views, before any shuffling."""
  num_per_grid = GridSpec.from_config(data_config).num_frames
  if num_clips == 1:
    return sampling.sample_indices(num_frames, num_per_grid, data_config.eval_sampling, seeds[0])[None]
  return sampling.multi_clip_indices(num_frames, num_per_grid, num_clips)


def eval_frames_used(num_frames: tf.Tensor, *, data_config: ml_collections.ConfigDict, num_clips: int = 1,
                     num_local_views: int = 0, seed: int = 0) -> tf.Tensor:
  """The indices of the frames :func:`preprocess_eval` decodes from a video of ``num_frames`` (with repeats).

  Inference converts only these frames of a video file (``inference.views``);
  the first frame is always among them (the shuffled-frames baseline keys each video by its bytes).
  """
  num_local_views = _eval_local_views(data_config, num_clips, num_local_views)
  seeds = _view_seeds(tf.constant([seed, 0], tf.int64), num_clips + num_local_views)
  used = [tf.zeros([1], tf.int32), tf.reshape(_eval_global_indices(num_frames, seeds, data_config, num_clips), [-1])]
  if num_local_views:
    used.append(tf.reshape(_local_runs(num_frames, seeds[num_clips:], data_config, training=False), [-1]))
  return tf.concat([tf.cast(u, tf.int32) for u in used], axis=0)


def process_splits(builder: tfds.core.DatasetBuilder, split: str, num_processes: int | None = None) -> list[str]:
  """The split cut into one disjoint, complete part per JAX process (host)."""
  if split not in builder.info.splits:
    raise ValueError(f'Dataset {builder.info.full_name} has no split {split!r}; it has {sorted(builder.info.splits)}.')
  return tfds.even_splits(split, n=num_processes or jax.process_count(), drop_remainder=False)


def _read(builder: tfds.core.DatasetBuilder, split: str, data_config: ml_collections.ConfigDict) -> tf.data.Dataset:
  """The still-encoded frames and label of each video (other features are dropped before caching)."""
  key = data_config.frames_key
  ds = records.read_undecoded(builder, split, key)  # file order fixed; shuffling is seeded below
  if labels_lib.has_labels(builder.info):
    return ds.map(traced.as_written(lambda ex: {key: ex[key], 'label': ex['label']}))
  return ds.map(traced.as_written(lambda ex: {key: ex[key], 'label': tf.constant(labels_lib.UNLABELLED, tf.int64)}))


def _host_parts(builder: tfds.core.DatasetBuilder, split: str, num_processes: int | None,
                keep: np.ndarray | None) -> list[tuple[str, int, np.ndarray | None]]:
  """(part, examples it serves, its kept positions relative to the part or None) per host."""
  parts, offset, out = process_splits(builder, split, num_processes), 0, []
  for part in parts:
    size = builder.info.splits[part].num_examples
    if keep is None:
      out.append((part, size, None))
    else:
      local = keep[(keep >= offset) & (keep < offset + size)] - offset
      out.append((part, len(local), local))
    offset += size
  return out


def steps_per_epoch(builder: tfds.core.DatasetBuilder, split: str, local_batch_size: int,
                    num_processes: int | None = None, keep: np.ndarray | None = None) -> int:
  """Full local batches per epoch that *every* host can serve (hosts stay in lockstep).

  ``keep``: positions of the split to read (``data.labels``: the labelled fraction); None = all.
  """
  smallest = min(size for _, size, _ in _host_parts(builder, split, num_processes, keep))
  steps = smallest // local_batch_size
  if steps == 0:
    what = 'examples' if keep is None else 'labelled examples (config.data.label_fraction)'
    raise ValueError(
        f'Split {split!r} of {builder.info.full_name} has {smallest} {what} per host, fewer than one '
        f'batch of {local_batch_size}: lower config.train.batch_size.')
  return steps


def _host(process_index: int | None, num_processes: int | None) -> tuple[int, int]:
  count = jax.process_count() if num_processes is None else num_processes
  index = jax.process_index() if process_index is None else process_index
  if not 0 <= index < count:
    raise ValueError(f'process_index {index} is outside [0, {count}).')
  return index, count


def view_counts(data_config: ml_collections.ConfigDict) -> tuple[int, int]:
  """(global, local) training views per video, validated; a batch carries global + local grids per video."""
  num_global, num_local = data_config.num_global_views, data_config.num_local_views
  if num_global < 1 or num_local < 0:
    raise ValueError(f'config.data.num_global_views must be >= 1 and num_local_views >= 0, got '
                     f'{num_global} and {num_local}.')
  if num_local:
    layout.local_grid_spec(data_config)  # raises on a local grid that cannot match the global image
  return num_global, num_local


def images_per_video(data_config: ml_collections.ConfigDict, pretext_spec: pretext.Spec | None = None) -> int:
  """Images a training step encodes per video: G + L views, or G fused samples of 1 + L images, and the pretext view."""
  num_global, num_local = view_counts(data_config)
  if is_fused(data_config):
    return (num_global + (pretext_spec is not None)) * (1 + num_local)
  return num_global + num_local + (pretext_spec is not None)


def create_train_dataset(
    builder: tfds.core.DatasetBuilder,
    data_config: ml_collections.ConfigDict,
    *,
    local_batch_size: int,
    seed: int,
    start_step: int = 0,
    num_views: int | None = None,
    keep: np.ndarray | None = None,
    process_index: int | None = None,
    num_processes: int | None = None,
    pretext_spec: pretext.Spec | None = None,
) -> tf.data.Dataset:
  """Endless training batches {'views': uint8 [B, V, H, W, 3], 'label': int32 [B]} for this host.

  V = ``num_views``, or the configured global views followed by the local ones;
  fused samples (``data.fuse_local_views``) are [B, V, P, H, W, 3] with V samples.

  Batches are a pure function of (seed, host, epoch, position) (of (seed,
  host, step, slot) with ``data_config.balanced_batches_per_class``, see
  ``scfa_jax.data.balanced``); starting at ``start_step`` skips exactly the
  examples already trained on, before any of them is decoded.

  Args:
    builder: the prepared dataset.
    data_config: ``config.data``.
    local_batch_size: videos per batch on this host.
    seed: ``config.seed``.
    start_step: steps already trained (resuming).
    num_views: global views per video and no local views (fine-tuning takes 1;
      fused samples keep their local views); None = ``view_counts(data_config)``,
      the encoder's training views.
    keep: sorted positions of the split to train on (``data.labels.labelled_positions``:
      the labelled fraction); None = every video.
    process_index: this host (default ``jax.process_index()``); tests set it.
    num_processes: hosts (default ``jax.process_count()``); tests set it.
    pretext_spec: temporal pretext tasks: each video gets one more view, the last, and
      'pretext' labels (``preprocess_train``).
  """
  config_validation.validate_augment(data_config.augment)
  num_global, num_local = view_counts(data_config)
  if num_views is not None:  # fused samples keep their local views
    num_global, num_local = num_views, num_local if is_fused(data_config) else 0
  index, count = _host(process_index, num_processes)
  split, num_examples, local_keep = _host_parts(builder, data_config.train_split, count, keep)[index]
  per_epoch = steps_per_epoch(builder, data_config.train_split, local_batch_size, count, keep) * local_batch_size
  base = _read(builder, split, data_config)
  if local_keep is not None:
    base = _kept(base, local_keep)
  host_seed = tf.constant([seed, index], tf.int64)
  if data_config.balanced_batches_per_class:
    ds = balanced.balanced_examples(base, num_examples, frames_key=data_config.frames_key,
                                    per_class=data_config.balanced_batches_per_class,
                                    local_batch_size=local_batch_size, host_seed=host_seed, start_step=start_step)
  else:
    ds = _shuffled_examples(base, data_config, per_epoch=per_epoch, local_batch_size=local_batch_size,
                            host_seed=host_seed, start_step=start_step)
  ds = ds.map(traced.as_written(lambda s, ex: preprocess_train(ex, s, data_config=data_config, num_views=num_global,
                                                               num_local_views=num_local, pretext_spec=pretext_spec)),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(local_batch_size, drop_remainder=True)
  return ds.prefetch(tf.data.AUTOTUNE)


def _kept(base: tf.data.Dataset, positions: np.ndarray) -> tf.data.Dataset:
  """The examples of ``base`` at ``positions`` (sorted, within this host's part), in order."""
  kept = tf.constant(positions, tf.int64)

  def is_kept(position: tf.Tensor, unused_example: dict) -> tf.Tensor:
    return tf.reduce_any(tf.equal(kept, position))

  def example_of(unused_position: tf.Tensor, example: dict) -> dict:
    return example

  return base.enumerate().filter(traced.as_written(is_kept)).map(traced.as_written(example_of))


def _shuffled_examples(base: tf.data.Dataset, data_config: ml_collections.ConfigDict, *, per_epoch: int,
                       local_batch_size: int, host_seed: tf.Tensor, start_step: int) -> tf.data.Dataset:
  """(seed, example) pairs from ``start_step`` on: each epoch a seeded shuffle of this host's examples."""
  if data_config.cache:
    base = base.cache()
  start_epoch, skip_in_first = divmod(start_step * local_batch_size, per_epoch)

  def epoch_dataset(epoch: tf.Tensor) -> tf.data.Dataset:
    # The order must depend on config.seed alone. With a TF global seed set
    # (tf.random.set_seed, keras.utils.set_random_seed) TF would mix it into the
    # shuffle seed below, and a global seed of 0 even crashes on our tensor seed.
    # This graph is the traced function's own, so nothing outside is touched.
    tf.compat.v1.get_default_graph().seed = None
    epoch_seed = tf.random.experimental.stateless_fold_in(host_seed, epoch)
    shuffle_seed = tf.random.stateless_uniform([], epoch_seed, minval=None, maxval=None, dtype=tf.int64)
    ds = base.shuffle(data_config.shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=False).enumerate()
    # Not take(per_epoch): the cache is only kept once an iterator reads to the end.
    ds = ds.filter(lambda position, example: position < per_epoch)
    ds = ds.map(lambda position, example: (tf.random.experimental.stateless_fold_in(epoch_seed, position), example))
    return ds.skip(tf.where(epoch == start_epoch, tf.constant(skip_in_first, tf.int64), tf.constant(0, tf.int64)))

  return tf.data.Dataset.range(start_epoch, 2**62).flat_map(traced.as_written(epoch_dataset))


def create_eval_dataset(
    builder: tfds.core.DatasetBuilder,
    split: str,
    data_config: ml_collections.ConfigDict,
    *,
    local_batch_size: int,
    num_clips: int = 1,
    num_local_views: int = 0,
    perturbation: perturbations.Perturbation | None = None,
    process_index: int | None = None,
    num_processes: int | None = None,
) -> tuple[tf.data.Dataset, int]:
  """One pass over ``split`` for this host, padded so every host runs the same batches.

  Args:
    builder: the prepared dataset.
    split: TFDS split name; this host reads its ``process_splits`` part.
    data_config: ``config.data``.
    local_batch_size: videos per batch on this host.
    num_clips: deterministic temporal views per video (test-time averaging);
      1 uses ``data_config.eval_sampling``, K > 1 ``sampling.multi_clip_indices``.
    num_local_views: L > 0 appends L deterministic local views (multi-scale
      models; ``layout.local_grid_spec``) to every video's views.
    perturbation: optional test-time perturbation (robustness report): its
      ``frames`` change each video's frame sequence before views are sampled,
      its ``pixels`` the finished grids.
    process_index: this host (default ``jax.process_index()``); tests set it.
    num_processes: hosts (default ``jax.process_count()``); tests set it.

  Returns:
    The dataset of {'image': uint8 [B, H, W, 3] ([B, K + L, H, W, 3] when
    num_clips = K > 1 or num_local_views = L > 0), 'label': int32 [B], 'mask': bool [B]} batches (mask
    False on padding) and the number of batches.
  """
  if num_clips < 1:
    raise ValueError(f'num_clips must be >= 1, got {num_clips}.')
  index, count = _host(process_index, num_processes)
  parts = process_splits(builder, split, count)
  largest = max(builder.info.splits[s].num_examples for s in parts)
  num_batches = max(1, math.ceil(largest / local_batch_size))
  ds = _read(builder, parts[index], data_config)

  def prepare(example: dict) -> dict:
    if perturbation is not None and perturbation.frames is not None:
      example = {**example, data_config.frames_key: perturbation.frames(example[data_config.frames_key])}
    prepared = preprocess_eval(example, data_config=data_config, num_clips=num_clips,
                               num_local_views=num_local_views)
    if perturbation is not None and perturbation.pixels is not None:
      prepared['image'] = perturbation.pixels(prepared['image'])
    return {**prepared, 'mask': tf.constant(True)}

  ds = ds.map(traced.as_written(prepare), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  padding = {k: tf.zeros(spec.shape, spec.dtype) for k, spec in ds.element_spec.items()}
  ds = ds.concatenate(tf.data.Dataset.from_tensors(padding).repeat())
  ds = ds.take(num_batches * local_batch_size).batch(local_batch_size)
  return ds.prefetch(tf.data.AUTOTUNE), num_batches
