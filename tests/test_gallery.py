"""The retrieval gallery: the right neighbours, the right grids, a readable PNG."""

import matplotlib.image
import numpy as np
import pytest

from scfa_jax import datasets
from scfa_jax.data import input_pipeline
from scfa_jax.evaluation import gallery
from tests.conftest import make_tiny_config


def test_nearest_ranks_by_cosine_similarity_best_first():
  memory = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
  indices, sims = gallery.nearest(memory, np.array([[2.0, 0.1]]), k=3)
  np.testing.assert_array_equal(indices, [[0, 2, 1]])  # scale does not matter, only direction
  assert sims[0, 0] == pytest.approx(2.0 / np.hypot(2.0, 0.1)) and sims[0, 0] > sims[0, 1] > sims[0, 2]


def test_queries_are_the_first_video_of_classes_spread_over_the_labels():
  labels = np.array([2, 0, 1, 0, 2, 3, 1, 3])
  assert gallery.choose_queries(labels, 2) == [1, 5]  # first of class 0, first of class 3
  assert gallery.choose_queries(labels, 10) == [1, 2, 0, 5]  # at most one per class


def test_read_grids_follows_the_evaluation_order_across_batches(tiny_data_dir):
  config = make_tiny_config(tiny_data_dir)
  builder = datasets.get_builder(config.data)
  dataset, _ = input_pipeline.create_eval_dataset(builder, 'test', config.data, local_batch_size=12)
  reference = next(dataset.as_numpy_iterator())['image']
  grids = gallery.read_grids(builder, 'test', config.data, [11, 0, 5], batch_size=5)  # 11 is in the third batch
  assert sorted(grids) == [0, 5, 11]
  for index, grid in grids.items():
    np.testing.assert_array_equal(grid, reference[index])
  with pytest.raises(IndexError, match='12 videos'):
    gallery.read_grids(builder, 'test', config.data, [12], batch_size=5)


def test_draw_writes_one_row_per_query(tmp_path):
  rng = np.random.default_rng(0)
  grids = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
  neighbours = rng.integers(0, 255, (2, 5, 32, 32, 3), dtype=np.uint8)
  out = str(tmp_path / 'gallery.png')
  gallery.draw(grids, [0, 1], neighbours, np.array([[0, 1, 0, 0, 1], [1, 1, 0, 1, 0]]),
               np.linspace(0.9, 0.1, 10).reshape(2, 5), ['a', 'b'], out)
  image = matplotlib.image.imread(out)
  assert image.shape[1] > image.shape[0] > 200  # 6 columns wider than 2 rows are tall
