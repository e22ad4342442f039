"""show_grids writes a readable PNG of a training batch, both views side by side."""

import matplotlib.image
import numpy as np

from scfa_jax.tools import show_grids
from tests.conftest import make_tiny_config


def test_writes_a_png_of_both_views_with_class_names(tiny_data_dir, tmp_path):
  config = make_tiny_config(tiny_data_dir)
  out = str(tmp_path / 'grids.png')
  mode = show_grids.show_grids(config, out, num_videos=4)
  assert mode == 'imagenet'
  with open(out, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  image = matplotlib.image.imread(out)
  assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
  assert np.ptp(image[..., :3]) > 0.5  # not blank


def test_batch_holds_two_views_and_the_class_names(tiny_data_dir):
  config = make_tiny_config(tiny_data_dir)
  batch = show_grids.training_batch(config, num_videos=3)
  assert batch['views'].shape == (3, 2, 16, 16, 3) and batch['views'].dtype == np.uint8
  assert batch['class_names'][:2] == ['move_right', 'move_left']
  title = show_grids.describe(config, 'caffe')
  assert '2x2 grid of 8 px tiles' in title and "'caffe'" in title and 'augmentation: none' in title
