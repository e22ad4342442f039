"""Multi-scale training views: the local run's frames, the local grid's shape, and the views in a batch."""

import numpy as np
import pytest
import tensorflow as tf

from scfa_jax import datasets
from scfa_jax.data import input_pipeline
from scfa_jax.data import layout
from scfa_jax.data import sampling
from scfa_jax.datasets import common
from tests.conftest import make_tiny_config


def _seed(i: int) -> tf.Tensor:
  return tf.constant([i, 3], tf.int64)


# ----------------------------------------------------------------------------- the local run


@pytest.mark.parametrize('num_frames', [16, 17, 40, 301])
@pytest.mark.parametrize('stride', [1, 2, 3])
def test_local_run_is_a_strided_run_from_a_random_start(num_frames, stride):
  starts = set()
  for s in range(30):
    indices = sampling.local_run_indices(num_frames, 4, stride, _seed(s)).numpy()
    assert indices.dtype == np.int32 and indices.shape == (4,)
    np.testing.assert_array_equal(np.diff(indices), stride)  # stride apart, in order
    assert indices[0] >= 0 and indices[-1] < num_frames
    starts.add(int(indices[0]))
  assert len(starts) > 5  # the start varies with the seed...
  if num_frames >= 40:
    assert max(starts) > num_frames // 2  # ...over the whole video, not only its beginning
  np.testing.assert_array_equal(sampling.local_run_indices(num_frames, 4, stride, _seed(7)).numpy(),
                                sampling.local_run_indices(tf.constant(num_frames), 4, stride, _seed(7)).numpy())


@pytest.mark.parametrize('num_frames', [1, 2, 3, 4, 5, 6])
def test_short_videos_shrink_the_stride_then_repeat_the_last_frame(num_frames):
  for s in range(10):
    indices = sampling.local_run_indices(num_frames, 4, 3, _seed(s)).numpy()
    assert indices.min() >= 0 and indices.max() < num_frames
    assert np.all(np.diff(indices) >= 0)  # never backwards in time
    if num_frames >= 4:  # the largest stride that fits: 1 for 4-6 frames
      np.testing.assert_array_equal(np.diff(indices), 1)
    else:  # every frame from the first, then the last one repeated
      np.testing.assert_array_equal(indices, np.minimum(np.arange(4), num_frames - 1))


def test_local_run_rejects_bad_arguments():
  with pytest.raises(ValueError, match='stride'):
    sampling.local_run_indices(10, 4, 0, _seed(0))


# ----------------------------------------------------------------------------- the local grid


def _data_config(**overrides):
  config = make_tiny_config('unused').data
  config.update({'grid_rows': 4, 'grid_cols': 4, 'tile_size': 4, 'num_local_views': 1, **overrides})
  return config


def test_local_grid_keeps_the_global_image_shape():
  config = _data_config(local_grid=2)
  local, glob = layout.local_grid_spec(config), layout.GridSpec.from_config(config)
  assert (local.rows, local.cols, local.tile_size) == (2, 2, 8)
  assert local.image_shape == glob.image_shape == (16, 16, 3)


@pytest.mark.parametrize('overrides,message', [
    (dict(grid_cols=2), 'square global grid'),
    (dict(local_grid=3), 'local_grid=3'),
    (dict(local_grid=0), 'local_grid=0'),
    (dict(local_frames_stride=0), 'local_frames_stride'),
    (dict(num_global_views=0), 'num_global_views'),
    (dict(num_local_views=-1), 'num_local_views'),
])
def test_impossible_view_settings_are_rejected(overrides, message):
  with pytest.raises(ValueError, match=message):
    input_pipeline.view_counts(_data_config(**overrides))


def _levelled_video(num_frames: int) -> dict:
  """Frame i is a flat grey of level 5 * i, so each tile tells which frame it shows."""
  frames = [np.full((24, 24, 3), 5 * i, np.uint8) for i in range(num_frames)]
  return {'frames': tf.constant(common.encode_frames(frames, shorter_side=0)), 'label': tf.constant(1)}


def _tile_levels(grid: np.ndarray, side: int) -> np.ndarray:
  """Mean level of each tile of a square grid, in tile (time) order."""
  n = grid.shape[0] // side
  return grid.reshape(n, side, n, side, 3).mean(axis=(1, 3, 4)).reshape(-1)


@pytest.mark.parametrize('stride', [1, 2])
def test_local_views_follow_the_global_ones_and_show_a_run_of_frames(stride):
  config = _data_config(local_grid=2, local_frames_stride=stride)
  example, seed = _levelled_video(40), tf.constant([5, 0], tf.int64)
  plain = input_pipeline.preprocess_train(example, seed, data_config=config, num_views=2)['views'].numpy()
  out = input_pipeline.preprocess_train(example, seed, data_config=config, num_views=2, num_local_views=2)
  grids = out['views'].numpy()
  assert grids.shape == (4, 16, 16, 3) and int(out['label']) == 1
  np.testing.assert_array_equal(grids[:2], plain)  # adding local views leaves the global views as they were
  for v in (0, 1):  # global: 16 frames over the whole video
    levels = _tile_levels(grids[v], 4) / 5
    assert levels[0] < 40 / 16 + 1 and levels[-1] > 40 - 40 / 16 - 1
  local_levels = [np.round(_tile_levels(grids[v], 8) / 5) for v in (2, 3)]
  for levels in local_levels:  # local: 4 frames `stride` apart, at twice the tile size
    np.testing.assert_allclose(np.diff(levels), stride, atol=0.5)
  assert local_levels[0][0] != local_levels[1][0]  # two local views start at different frames


def test_view_span_draws_each_global_view_from_its_own_stretch_and_leaves_local_views_alone():
  config = _data_config(local_grid=2, num_local_views=1, view_span=(0.5, 0.5))
  example, seed = _levelled_video(48), tf.constant([3, 1], tf.int64)
  whole = _data_config(local_grid=2, num_local_views=1)
  plain = input_pipeline.preprocess_train(example, seed, data_config=whole, num_views=4, num_local_views=1)
  spanned = input_pipeline.preprocess_train(example, seed, data_config=config, num_views=4, num_local_views=1)
  plain, spanned = plain['views'].numpy(), spanned['views'].numpy()
  np.testing.assert_array_equal(spanned[4], plain[4])  # the local view: same seed, same run
  firsts = []
  for v in range(4):
    frames = np.round(_tile_levels(spanned[v], 4) / 5)
    assert np.all(np.diff(frames) > 0) and frames[-1] - frames[0] < 24  # in order, within half of the 48 frames
    assert not np.array_equal(spanned[v], plain[v])
    firsts.append(frames[0])
  assert len(set(firsts)) > 1  # each view its own stretch


@pytest.mark.parametrize('fused', [False, True])
def test_crop_local_views_false_leaves_local_views_uncropped_and_global_views_cropped(fused):
  """A crop resized back to the tile blurs 1-pixel detail: the local views keep every pixel (the sampled run's)."""
  rng = np.random.default_rng(0)
  frames = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(20)]  # 1-pixel texture, new each frame
  example = {'frames': tf.constant(common.encode_frames(frames, shorter_side=0)),
             'label': tf.constant(1)}
  seed = tf.constant([4, 2], tf.int64)

  def views(**augment):
    config = _data_config(local_grid=2, fuse_local_views=fused)
    config.augment.update(augment)
    grids = input_pipeline.preprocess_train(example, seed, data_config=config, num_views=2, num_local_views=1)
    grids = grids['views'].numpy()
    return (grids[:, 0], grids[:, 1]) if fused else (grids[:2], grids[2:])

  plain_global, plain_local = views()
  crop_global, crop_local = views(random_crop=True)
  kept_global, kept_local = views(random_crop=True, crop_local_views=False)
  np.testing.assert_array_equal(kept_local, plain_local)  # the local run's pixels, as without augmentation
  np.testing.assert_array_equal(kept_global, crop_global)  # global views cropped as before
  assert not np.array_equal(crop_global, plain_global) and not np.array_equal(crop_local, plain_local)
  jittered_local = views(random_crop=True, crop_local_views=False, brightness=0.4)[1]
  assert not np.array_equal(jittered_local, plain_local)  # colour still applies to local views


@pytest.mark.parametrize('num_frames', [4, 17, 40])
def test_evaluation_local_runs_are_deterministic_and_spread(num_frames):
  runs = [sampling.local_run_indices(num_frames, 4, 2, position=p).numpy() for p in (0.0, 0.5, 1.0)]
  assert runs[0][0] == 0 and runs[2][-1] == num_frames - 1  # from the very start to the very end
  assert runs[0][0] <= runs[1][0] <= runs[2][0]
  np.testing.assert_array_equal(runs[1], sampling.local_run_indices(num_frames, 4, 2, position=0.5).numpy())


def test_evaluation_adds_centred_local_views_after_the_global_clips():
  config = _data_config(local_grid=2, local_frames_stride=1)
  example = _levelled_video(40)
  clips = input_pipeline.preprocess_eval(example, data_config=config, num_clips=2)['image'].numpy()
  single = input_pipeline.preprocess_eval(example, data_config=config)['image'].numpy()
  out = input_pipeline.preprocess_eval(example, data_config=config, num_clips=2, num_local_views=1)['image'].numpy()
  assert out.shape == (3, 16, 16, 3)
  np.testing.assert_array_equal(out[:2], clips)  # the global clips are unchanged
  levels = np.round(_tile_levels(out[2], 8) / 5)
  np.testing.assert_allclose(np.diff(levels), 1, atol=0.5)  # 4 consecutive frames...
  assert 40 / 2 - 4 <= levels[0] <= 40 / 2  # ...around the middle of the video
  one = input_pipeline.preprocess_eval(example, data_config=config, num_local_views=1)['image'].numpy()
  assert one.shape == (2, 16, 16, 3)  # 1 clip + 1 local view: the single view, then the local one
  np.testing.assert_array_equal(one[0], single)


# ----------------------------------------------------------------------------- batches


@pytest.fixture(scope='module')
def tiny_builder(tiny_data_dir):
  return datasets.get_builder(make_tiny_config(tiny_data_dir).data)


def test_train_batches_carry_global_then_local_views(tiny_builder, tiny_data_dir):
  config = make_tiny_config(tiny_data_dir)
  config.data.update(num_local_views=1, local_grid=1)  # 2x2 grid of 8 px -> one 16 px frame
  make = lambda **kw: input_pipeline.create_train_dataset(tiny_builder, config.data, local_batch_size=8, seed=0, **kw)  # noqa
  batch = next(make().as_numpy_iterator())
  plain = next(make(num_views=2).as_numpy_iterator())  # an explicit count: global views only (as fine-tuning)
  assert batch['views'].shape == (8, 3, 16, 16, 3) and plain['views'].shape == (8, 2, 16, 16, 3)
  np.testing.assert_array_equal(batch['views'][:, :2], plain['views'])
  np.testing.assert_array_equal(batch['label'], plain['label'])


@pytest.mark.slow
def test_training_with_a_local_view_runs_end_to_end(tiny_config, tmp_path):
  from scfa_jax.training import train  # pylint: disable=g-import-not-at-top
  tiny_config.data.update(num_local_views=1, local_grid=1)
  tiny_config.train.max_steps = 2
  tiny_config.eval.update(num_test_clips=1, retrieval_ks=(), plots=False)
  results = train.train_and_evaluate(tiny_config, str(tmp_path / 'run'))
  assert 0.0 <= results['linear_probe_top1'] <= 1.0 and results['num_test'] == 12


def test_demo_multiscale_config_adds_one_local_view_of_the_demos_image_size():
  from configs import demo, demo_multiscale  # pylint: disable=g-import-not-at-top
  config, base = demo_multiscale.get_config(), demo.get_config()
  assert input_pipeline.view_counts(config.data) == (2, 1)
  assert layout.local_grid_spec(config.data).image_shape == layout.GridSpec.from_config(config.data).image_shape
  assert (config.train.batch_size, config.train.num_epochs) == (base.train.batch_size, base.train.num_epochs)


def test_local_views_resume_exactly_and_follow_the_shuffled_frames_baseline(tiny_builder, tiny_data_dir):
  config = make_tiny_config(tiny_data_dir)
  config.data.update(num_local_views=2, local_grid=2)
  make = lambda start: input_pipeline.create_train_dataset(tiny_builder, config.data, local_batch_size=8, seed=0,  # noqa
                                                           start_step=start)
  full = [b for b, _ in zip(make(0).as_numpy_iterator(), range(4))]
  resumed = [b for b, _ in zip(make(2).as_numpy_iterator(), range(2))]
  for x, y in zip(full[2:], resumed):
    np.testing.assert_array_equal(x['views'], y['views'])
  config.data.shuffle_frames = True  # the baseline shuffles the frames of local views too
  shuffled = next(make(0).as_numpy_iterator())
  np.testing.assert_array_equal(shuffled['label'], full[0]['label'])
  assert not np.array_equal(shuffled['views'][:, 2:], full[0]['views'][:, 2:])
