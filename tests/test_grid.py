"""Tiling order of frames_to_grid: left to right, top to bottom, for every supported grid."""

import numpy as np
import pytest
import tensorflow as tf

from scfa_jax.data import grid

GRIDS = [(2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (2, 3), (4, 2)]


def _numbered_frames(num: int, h: int, w: int) -> np.ndarray:
  """Frame k is filled with k in channel 0 and holds its pixel coordinates in channels 1 and 2."""
  frames = np.zeros((num, h, w, 3), np.int32)
  frames[..., 0] = np.arange(num)[:, None, None]
  frames[..., 1] = np.arange(h)[None, :, None]
  frames[..., 2] = np.arange(w)[None, None, :]
  return frames


@pytest.mark.parametrize('rows,cols', GRIDS)
@pytest.mark.parametrize('tile', [1, 5, 8])
def test_frame_k_lands_at_row_k_div_cols_and_column_k_mod_cols(rows, cols, tile):
  frames = _numbered_frames(rows * cols, tile, tile)
  image = grid.frames_to_grid(tf.constant(frames), rows, cols).numpy()
  assert image.shape == (rows * tile, cols * tile, 3)
  for k in range(rows * cols):
    r, c = divmod(k, cols)
    np.testing.assert_array_equal(image[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile], frames[k])


def test_non_square_tiles_keep_their_pixels():
  frames = _numbered_frames(6, 3, 7)
  image = grid.frames_to_grid(tf.constant(frames), 2, 3).numpy()
  assert image.shape == (6, 21, 3)
  np.testing.assert_array_equal(image[3:6, 7:14], frames[4])


def test_leading_dimensions_are_kept():
  """[V, N, h, w, C] (views) and [B, V, N, h, w, C] give one grid per leading index."""
  frames = np.random.default_rng(0).integers(0, 255, (2, 3, 9, 4, 4, 3)).astype(np.uint8)
  batched = grid.frames_to_grid(tf.constant(frames), 3, 3).numpy()
  assert batched.shape == (2, 3, 12, 12, 3) and batched.dtype == np.uint8
  for b in range(2):
    for v in range(3):
      np.testing.assert_array_equal(batched[b, v], grid.frames_to_grid(tf.constant(frames[b, v]), 3, 3).numpy())


def test_dynamic_shapes_inside_tf_function():
  fn = tf.function(lambda x: grid.frames_to_grid(x, 2, 2),
                   input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.uint8)])
  frames = np.arange(2 * 4 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 4, 2, 2, 3)
  out = fn(tf.constant(frames)).numpy()
  np.testing.assert_array_equal(out[1, 2:, :2], frames[1, 2])


def test_wrong_frame_count_raises():
  with pytest.raises(ValueError, match='needs 16 frames, got 15'):
    grid.frames_to_grid(tf.zeros([15, 4, 4, 3]), 4, 4)
  with pytest.raises(ValueError, match='frames'):
    grid.frames_to_grid(tf.zeros([4, 4, 3]), 2, 2)
