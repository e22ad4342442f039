"""The demo baselines change only what they name, and their views are what they promise."""

import numpy as np
import pytest
from flax import traverse_util

from configs import demo
from configs import demo_ce
from configs import demo_queue
from configs import demo_shuffled
from configs import demo_single_frame
from scfa_jax import datasets
from scfa_jax.data import input_pipeline
from tests.conftest import make_tiny_config


def _demo_grid_side() -> int:
  config = demo.get_config()
  return config.data.grid_rows * config.data.tile_size


@pytest.mark.parametrize('module,expected', [
    (demo_ce, lambda: {'loss.name': 'cross_entropy'}),
    (demo_single_frame, lambda: {'data.grid_rows': 1, 'data.grid_cols': 1, 'data.tile_size': _demo_grid_side()}),
    (demo_shuffled, lambda: {'data.shuffle_frames': True}),
    (demo_queue, lambda: {'train.batch_size': 8, 'loss.queue_size': 48}),
])
def test_baseline_changes_only_what_it_names(module, expected):
  base, variant = (traverse_util.flatten_dict(c.get_config().to_dict(), sep='.') for c in (demo, module))
  assert set(base) == set(variant)
  assert {k: v for k, v in variant.items() if base[k] != v} == expected()


def test_single_frame_images_are_as_large_as_the_grids():
  grid = input_pipeline.GridSpec.from_config(demo.get_config().data)
  single = input_pipeline.GridSpec.from_config(demo_single_frame.get_config().data)
  assert single.num_frames == 1 and grid.num_frames == 16
  assert single.image_shape == grid.image_shape  # same compute; only time is taken away


def _tiles(grids: np.ndarray, rows: int, cols: int) -> np.ndarray:
  """[..., rows*t, cols*t, 3] -> [..., rows*cols, t, t, 3], left-to-right, top-to-bottom."""
  t = grids.shape[-2] // cols
  x = grids.reshape(grids.shape[:-3] + (rows, t, cols, t, 3))
  x = np.moveaxis(x, -4, -3)  # [..., rows, cols, t, t, 3]
  return x.reshape(grids.shape[:-3] + (rows * cols, t, t, 3))


def _first_train_batch(config) -> np.ndarray:
  builder = datasets.get_builder(config.data)
  dataset = input_pipeline.create_train_dataset(builder, config.data, local_batch_size=8, seed=0)
  return next(dataset.as_numpy_iterator())['views']


def test_shuffled_views_hold_the_same_frames_in_another_order(tiny_data_dir):
  ordered_config = make_tiny_config(tiny_data_dir)
  shuffled_config = make_tiny_config(tiny_data_dir)
  shuffled_config.data.shuffle_frames = True
  ordered = _tiles(_first_train_batch(ordered_config), 2, 2)
  shuffled = _tiles(_first_train_batch(shuffled_config), 2, 2)
  assert ordered.shape == shuffled.shape == (8, 2, 4, 8, 8, 3)
  reordered = 0
  for a, b in zip(ordered.reshape((16,) + ordered.shape[2:]), shuffled.reshape((16,) + shuffled.shape[2:])):
    assert sorted(t.tobytes() for t in a) == sorted(t.tobytes() for t in b)  # the same frames
    reordered += not np.array_equal(a, b)
  assert reordered >= 8  # most of the 16 views are permuted (a random order of 4 is the identity 1 time in 24)


def test_single_frame_views_are_whole_frames(tiny_data_dir):
  config = make_tiny_config(tiny_data_dir)
  config.data.update(grid_rows=1, grid_cols=1, tile_size=16)
  views = _first_train_batch(config)
  assert views.shape == (8, 2, 16, 16, 3)
  assert not np.array_equal(views[:, 0], views[:, 1])  # two different moments of each video


def _eval_tiles(config) -> np.ndarray:
  builder = datasets.get_builder(config.data)
  dataset, _ = input_pipeline.create_eval_dataset(builder, 'test', config.data, local_batch_size=12)
  return _tiles(next(dataset.as_numpy_iterator())['image'], 2, 2)


def test_shuffled_test_grids_have_an_order_of_their_own(tiny_data_dir):
  """Evaluation is deterministic per video, but no single frame order is shared by all test videos."""
  ordered_config = make_tiny_config(tiny_data_dir)
  shuffled_config = make_tiny_config(tiny_data_dir)
  shuffled_config.data.shuffle_frames = True
  ordered, shuffled = _eval_tiles(ordered_config), _eval_tiles(shuffled_config)
  np.testing.assert_array_equal(shuffled, _eval_tiles(shuffled_config))
  orders = set()
  for a, b in zip(ordered, shuffled):  # 12 videos x 4 tiles
    orders.add(tuple(next(j for j in range(4) if np.array_equal(tile, a[j])) for tile in b))
  assert len(orders) >= 4, orders  # one fixed order would be a re-layout a probe could still read
