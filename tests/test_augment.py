"""Spatial augmentation: one draw per view, applied identically to all of the view's frames."""

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from scfa_jax import config as base_config
from scfa_jax import config_validation
from scfa_jax.data import augment
from scfa_jax.data import layout
from scfa_jax.data import views
from scfa_jax.datasets import common

SPEC = layout.GridSpec(rows=4, cols=4, tile_size=16)


def _aug(**on) -> ml_collections.ConfigDict:
  aug = base_config.get_config().data.augment
  aug.update(on)
  return aug


ALL_ON = dict(random_crop=True, flip=True, brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1)


def _texture(size: int = 32, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  image = np.kron(rng.integers(0, 255, (size // 4, size // 4, 3)), np.ones((4, 4, 1)))  # blocks survive JPEG
  return image.astype(np.uint8)


def _tiles(grids: np.ndarray) -> np.ndarray:
  """[V, H, W, 3] grids -> [V, N, t, t, 3] tiles in frame order."""
  v, t = grids.shape[0], SPEC.tile_size
  tiles = grids.reshape(v, SPEC.rows, t, SPEC.cols, t, 3).transpose(0, 1, 3, 2, 4, 5)
  return tiles.reshape(v, SPEC.num_frames, t, t, 3)


def _views(frames, aug, seeds=((1, 2), (3, 4)), num_frames=None):
  encoded = tf.constant(common.encode_frames(frames, shorter_side=0))
  n = num_frames or SPEC.num_frames
  indices = tf.constant([list(range(n))] * len(seeds), tf.int32)
  return views.make_views(encoded, indices, SPEC, aug_config=aug, seeds=tf.constant(seeds, tf.int64)).numpy()


def test_identical_frames_stay_identical_within_a_view_and_views_differ():
  grids = _views([_texture()] * SPEC.num_frames, _aug(**ALL_ON))
  tiles = _tiles(grids)
  for v in range(2):
    for k in range(1, SPEC.num_frames):
      np.testing.assert_array_equal(tiles[v, k], tiles[v, 0])
  assert np.abs(tiles[0, 0].astype(int) - tiles[1, 0]).mean() > 5  # two views, two different draws
  plain = _views([_texture()] * SPEC.num_frames, _aug())
  assert np.abs(plain.astype(int) - grids).mean() > 5  # the augmentation did something


def test_one_crop_and_flip_for_all_frames_of_a_view():
  """Frames that differ only by a brightness offset keep that offset after the geometric augmentation."""
  base = _texture().astype(int)
  frames = [np.clip(base // 2 + 8 * k, 0, 255).astype(np.uint8) for k in range(SPEC.num_frames)]
  for seeds in [((1, 2), (3, 4)), ((5, 6), (7, 8)), ((9, 10), (11, 12))]:
    tiles = _tiles(_views(frames, _aug(random_crop=True, flip=True), seeds)).astype(int)
    for v in range(2):
      for k in range(1, SPEC.num_frames):
        error = np.abs(tiles[v, k] - tiles[v, 0] - 8 * k)  # JPEG noise only; another crop would be far off
        assert error.mean() < 1.0 and error.max() <= 8, (v, k, error.mean(), error.max())


def test_augmentation_is_a_pure_function_of_the_seed():
  frames = [_texture(seed=k) for k in range(SPEC.num_frames)]
  a = _views(frames, _aug(**ALL_ON))
  np.testing.assert_array_equal(a, _views(frames, _aug(**ALL_ON)))
  assert not np.array_equal(a, _views(frames, _aug(**ALL_ON), seeds=((1, 3), (3, 5))))


def test_flip_mirrors_about_half_of_the_views():
  frame = _texture(16)  # stored at the tile size: no resizing, exact comparison
  seeds = [(s, 0) for s in range(40)]
  grids = _views([frame] * SPEC.num_frames, _aug(flip=True), seeds=seeds)
  tiles = _tiles(grids)[:, 0]
  decoded = tf.io.decode_jpeg(common.encode_frames([frame], shorter_side=0)[0]).numpy()
  flipped = [bool(np.array_equal(t, decoded[:, ::-1])) for t in tiles]
  kept = [bool(np.array_equal(t, decoded)) for t in tiles]
  assert all(f != k for f, k in zip(flipped, kept))
  assert 10 <= sum(flipped) <= 30


@pytest.mark.parametrize('height,width', [(24, 24), (56, 75), (240, 320), (7, 5)])
def test_crop_box_stays_inside_the_frame(height, width):
  scale, ratio = (0.2, 1.0), (0.5, 2.0)
  areas = []
  for s in range(100):
    top, left, h, w = augment.random_crop_box(tf.constant([s, 1], tf.int64), height, width, scale=scale,
                                              ratio=ratio).numpy()
    assert 0 <= top and 0 <= left and h >= 1 and w >= 1 and top + h <= height and left + w <= width
    areas.append(h * w / (height * width))
  if min(height, width) >= 24:
    assert min(areas) < 0.4 and max(areas) > 0.7  # the scale range is used


@pytest.mark.parametrize('b,c,s', [(1.0, 1.0, 1.0), (1.3, 0.7, 1.4), (0.8, 1.2, 0.0)])
def test_colour_matrix_is_the_step_by_step_jitter(b, c, s):
  """Without hue: torchvision's brightness, contrast, saturation formulas applied one after another."""
  rng = np.random.default_rng(0)
  rgb = rng.uniform(60, 190, (50, 3)).astype(np.float32)
  luma = lambda x: x @ np.array([0.299, 0.587, 0.114], np.float32)  # noqa: E731
  mean = float(luma(rgb).mean())
  x = rgb * b
  x = c * x + (1 - c) * luma(x).mean()
  x = s * x + (1 - s) * luma(x)[:, None]
  matrix, offset = augment.colour_matrix(b, c, s, 0.0, mean)
  np.testing.assert_allclose(rgb @ matrix.numpy() + offset.numpy(), x, rtol=1e-4, atol=1e-2)


def test_hue_rotation_keeps_grey_and_luma_and_turns_around():
  rgb = np.array([[128.0, 128.0, 128.0], [200.0, 40.0, 90.0], [10.0, 220.0, 30.0]], np.float32)
  luma = np.array([0.299, 0.587, 0.114], np.float32)
  for turns in (0.1, 0.25, -0.4):
    matrix, offset = augment.colour_matrix(1.0, 1.0, 1.0, turns, 0.0)
    out = rgb @ matrix.numpy() + offset.numpy()
    np.testing.assert_allclose(out[0], rgb[0], atol=1e-3)  # grey has no hue
    np.testing.assert_allclose(out @ luma, rgb @ luma, atol=1e-2)
    assert np.abs(out[1:] - rgb[1:]).max() > 10
  half, _ = augment.colour_matrix(1.0, 1.0, 1.0, 0.5, 0.0)
  np.testing.assert_allclose(rgb @ half.numpy() @ half.numpy(), rgb, atol=1e-2)


def test_colour_jitter_keeps_the_pixel_range():
  grids = _views([_texture(seed=k) for k in range(SPEC.num_frames)],
                 _aug(brightness=1.0, contrast=1.0, saturation=1.0, hue=0.5))
  assert grids.dtype == np.uint8 and grids.shape == (2, 64, 64, 3)


def test_invalid_ranges_raise():
  for field, value in [('crop_scale', (0.0, 1.0)), ('crop_scale', (0.8, 0.5)), ('crop_ratio', (2.0, 1.0)),
                       ('brightness', 1.5), ('hue', 0.7)]:
    with pytest.raises(ValueError, match=field):
      config_validation.validate_augment(_aug(**{field: value}))
  config_validation.validate_augment(_aug(**ALL_ON))
  assert augment.is_enabled(_aug(hue=0.1)) and not augment.is_enabled(_aug())
