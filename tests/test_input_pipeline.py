"""The tf.data pipelines: views from stored frames, host shards, determinism, resume, eval clips."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from scfa_jax import datasets
from scfa_jax.data import input_pipeline
from scfa_jax.data import layout
from scfa_jax.data import views
from scfa_jax.datasets import common
from tests.conftest import make_tiny_config


@pytest.fixture(scope='module')
def tiny_builder(tiny_data_dir):
  return datasets.get_builder(make_tiny_config(tiny_data_dir).data)


@pytest.fixture
def tiny(tiny_builder, tiny_data_dir):
  """The prepared tiny dataset and a fresh config (2x2 grids of 8 px tiles) that a test may change."""
  return tiny_builder, make_tiny_config(tiny_data_dir)


def _take(dataset: tf.data.Dataset, n: int) -> list[dict]:
  return [b for b, _ in zip(dataset.as_numpy_iterator(), range(n))]


def _video_ids(builder, split: str) -> list[str]:
  return [ex['video_id'].decode() for ex in builder.as_dataset(split=split).as_numpy_iterator()]


# ----------------------------------------------------------------------------- frames -> grids


def test_frames_stored_at_the_tile_size_are_tiled_untouched():
  rng = np.random.default_rng(0)
  frames = [rng.integers(0, 255, (30, 40, 3), dtype=np.uint8) for _ in range(6)]
  encoded = common.encode_frames(frames, shorter_side=8)  # the default format: 8x8 squares
  spec = layout.GridSpec(rows=2, cols=2, tile_size=8)
  indices = tf.constant([[0, 2, 3, 5], [1, 1, 4, 4]], tf.int32)
  grids = views.make_views(tf.constant(encoded), indices, spec).numpy()
  decoded = [tf.io.decode_jpeg(e).numpy() for e in encoded]
  assert grids.shape == (2, 16, 16, 3)
  for v, row in enumerate(indices.numpy()):
    for k, i in enumerate(row):
      r, c = divmod(k, 2)
      np.testing.assert_array_equal(grids[v, r * 8:(r + 1) * 8, c * 8:(c + 1) * 8], decoded[i])


@pytest.mark.parametrize('keep_aspect', [False, True])
def test_other_stored_sizes_are_resized_to_the_tile(keep_aspect):
  frame = np.full((48, 64, 3), 200, np.uint8)
  encoded = common.encode_frames([frame] * 4, shorter_side=24, keep_aspect=keep_aspect)
  assert tf.io.decode_jpeg(encoded[0]).shape == ((24, 32, 3) if keep_aspect else (24, 24, 3))
  spec = layout.GridSpec(rows=2, cols=2, tile_size=10)
  grids = views.make_views(tf.constant(encoded), tf.constant([[0, 1, 2, 3]], tf.int32), spec).numpy()
  assert grids.shape == (1, 20, 20, 3) and np.abs(grids.astype(int) - 200).max() <= 2


def test_frames_of_one_example_share_one_size():
  frames = [np.zeros((30, 40, 3), np.uint8), np.zeros((60, 20, 3), np.uint8)]
  shapes = {tf.io.decode_jpeg(e).shape for e in common.encode_frames(frames, shorter_side=0)}
  assert shapes == {(30, 40, 3)}


@pytest.mark.parametrize('method', ['segment', 'random_sorted', 'uniform'])
def test_a_video_shorter_than_the_grid_repeats_frames(tiny, method):
  _, config = tiny
  config.data.train_sampling = method
  frames = [np.full((24, 24, 3), 40 * i, np.uint8) for i in range(3)]
  example = {'frames': tf.constant(common.encode_frames(frames, shorter_side=0)), 'label': tf.constant(2)}
  out = input_pipeline.preprocess_train(example, tf.constant([0, 0], tf.int64), data_config=config.data)
  assert out['views'].shape == (2, 16, 16, 3) and int(out['label']) == 2
  levels = out['views'].numpy().reshape(2, 2, 8, 2, 8, 3).mean(axis=(2, 4, 5)).reshape(2, 4)
  np.testing.assert_allclose(levels, np.round(levels / 40) * 40, atol=3)  # every tile is one of the 3 frames
  assert np.all(np.diff(levels, axis=1) >= -3)  # in temporal order


# ----------------------------------------------------------------------------- hosts


@pytest.mark.parametrize('num_processes', [1, 2, 3, 5])
@pytest.mark.parametrize('split', ['train', 'test'])
def test_host_shards_are_disjoint_and_complete(tiny, num_processes, split):
  builder, _ = tiny
  parts = input_pipeline.process_splits(builder, split, num_processes)
  ids = [_video_ids(builder, part) for part in parts]
  flat = [i for part in ids for i in part]
  assert len(flat) == len(set(flat))  # disjoint
  assert set(flat) == set(_video_ids(builder, split))  # complete
  assert max(map(len, ids)) - min(map(len, ids)) <= 1  # balanced


@pytest.mark.slow
def test_eval_hosts_run_equal_batches_and_cover_the_split_once(tiny):
  builder, config = tiny
  outs = [input_pipeline.create_eval_dataset(builder, 'test', config.data, local_batch_size=3, process_index=i,
                                             num_processes=5) for i in range(5)]
  assert len({n for _, n in outs}) == 1
  labels = []
  for dataset, num_batches in outs:
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) == num_batches
    for b in batches:
      assert b['image'].shape == (3, 16, 16, 3) and b['image'].dtype == np.uint8
      labels.extend(b['label'][b['mask']].tolist())
  full = [ex['label'] for ex in builder.as_dataset(split='test').as_numpy_iterator()]
  assert collections.Counter(labels) == collections.Counter(full)


def test_process_index_out_of_range_raises(tiny):
  builder, config = tiny
  with pytest.raises(ValueError, match='process_index 2'):
    input_pipeline.create_train_dataset(builder, config.data, local_batch_size=4, seed=0, process_index=2,
                                        num_processes=2)


# ----------------------------------------------------------------------------- training stream


@pytest.mark.parametrize('method', ['segment', 'random_sorted', 'uniform'])
def test_every_sampling_feeds_the_training_stream(tiny, method):
  builder, config = tiny
  config.data.train_sampling = method
  (batch,) = _take(input_pipeline.create_train_dataset(builder, config.data, local_batch_size=8, seed=0), 1)
  assert batch['views'].shape == (8, 2, 16, 16, 3)


def test_train_batches_shape_and_two_different_views(tiny):
  builder, config = tiny
  (batch,) = _take(input_pipeline.create_train_dataset(builder, config.data, local_batch_size=8, seed=0), 1)
  assert batch['views'].shape == (8, 2, 16, 16, 3) and batch['views'].dtype == np.uint8
  assert batch['label'].shape == (8,) and batch['label'].dtype == np.int32
  assert all(not np.array_equal(v[0], v[1]) for v in batch['views'])


def test_same_seed_same_batches_other_seed_other_batches(tiny):
  builder, config = tiny
  make = lambda seed: input_pipeline.create_train_dataset(builder, config.data, local_batch_size=8, seed=seed)  # noqa
  a, b, c = _take(make(0), 4), _take(make(0), 4), _take(make(1), 4)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x['views'], y['views'])
    np.testing.assert_array_equal(x['label'], y['label'])
  assert not all(np.array_equal(x['views'], z['views']) for x, z in zip(a, c))


@pytest.mark.parametrize('global_seed', [0, 7])
def test_batches_ignore_tensorflows_global_seed(tiny, global_seed):
  """tf.random.set_seed (Keras sets it too) neither changes the batches nor breaks the pipeline."""
  builder, config = tiny
  make = lambda: _take(input_pipeline.create_train_dataset(builder, config.data, local_batch_size=8, seed=0), 3)  # noqa
  plain = make()
  tf.random.set_seed(global_seed)
  try:
    seeded = make()
  finally:
    tf.random.set_seed(None)
  for x, y in zip(plain, seeded):
    np.testing.assert_array_equal(x['views'], y['views'])
    np.testing.assert_array_equal(x['label'], y['label'])


def test_each_epoch_draws_new_views_of_the_same_videos(tiny):
  builder, config = tiny
  config.data.shuffle_buffer = 1  # same video order every epoch
  steps = input_pipeline.steps_per_epoch(builder, 'train', 8)
  batches = _take(input_pipeline.create_train_dataset(builder, config.data, local_batch_size=8, seed=0), 2 * steps)
  for first, second in zip(batches[:steps], batches[steps:]):
    np.testing.assert_array_equal(first['label'], second['label'])
    assert not np.array_equal(first['views'], second['views'])


@pytest.mark.parametrize('start_step', [1, 3, 4])
def test_resuming_at_a_step_continues_the_same_stream(tiny, start_step):
  builder, config = tiny
  full = _take(input_pipeline.create_train_dataset(builder, config.data, local_batch_size=8, seed=0), 6)
  resumed = _take(input_pipeline.create_train_dataset(builder, config.data, local_batch_size=8, seed=0,
                                                      start_step=start_step), 6 - start_step)
  for x, y in zip(full[start_step:], resumed):
    np.testing.assert_array_equal(x['views'], y['views'])
    np.testing.assert_array_equal(x['label'], y['label'])


def test_hosts_draw_different_videos_and_views(tiny):
  builder, config = tiny
  hosts = [_take(input_pipeline.create_train_dataset(builder, config.data, local_batch_size=4, seed=0,
                                                     process_index=i, num_processes=2), 1)[0] for i in range(2)]
  assert not np.array_equal(hosts[0]['views'], hosts[1]['views'])


# ----------------------------------------------------------------------------- evaluation clips


def test_eval_clips_are_deterministic_distinct_and_clip_count_one_is_the_plain_view(tiny):
  builder, config = tiny
  one, n1 = input_pipeline.create_eval_dataset(builder, 'test', config.data, local_batch_size=4)
  two, n2 = input_pipeline.create_eval_dataset(builder, 'test', config.data, local_batch_size=4, num_clips=2)
  assert n1 == n2 == 3
  single, multi = list(one.as_numpy_iterator()), list(two.as_numpy_iterator())
  again = list(two.as_numpy_iterator())
  for s, m, a in zip(single, multi, again):
    assert s['image'].shape == (4, 16, 16, 3) and m['image'].shape == (4, 2, 16, 16, 3)
    np.testing.assert_array_equal(m['image'], a['image'])
    np.testing.assert_array_equal(s['label'], m['label'])
    np.testing.assert_array_equal(s['mask'], m['mask'])
    for video in m['image'][m['mask']]:  # tiny clips have >= 8 frames: 2 clips of 4 frames never coincide
      assert not np.array_equal(video[0], video[1])
  with pytest.raises(ValueError, match='num_clips'):
    input_pipeline.create_eval_dataset(builder, 'test', config.data, local_batch_size=4, num_clips=0)
