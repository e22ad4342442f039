"""Frame aggregation: tile a view's frames into one image."""

from __future__ import annotations

import tensorflow as tf


def frames_to_grid(frames: tf.Tensor, rows: int, cols: int) -> tf.Tensor:
  """Tiles ``rows * cols`` frames [..., N, h, w, C] into images [..., rows*h, cols*w, C].

  Frame k lands at grid row ``k // cols``, column ``k % cols`` (left to right,
  top to bottom), which is how the paper reads time off the grid. Leading
  dimensions (views, batch) are kept.
  """
  frames = tf.convert_to_tensor(frames)
  if frames.shape.rank is None or frames.shape.rank < 4:
    raise ValueError(f'frames_to_grid needs frames [..., N, h, w, C], got shape {frames.shape}.')
  num = frames.shape[-4]
  if num is not None and num != rows * cols:
    raise ValueError(f'A {rows}x{cols} grid needs {rows * cols} frames, got {num}.')
  shape = tf.shape(frames)
  lead, (h, w, c) = shape[:-4], (shape[-3], shape[-2], shape[-1])
  k = frames.shape.rank - 4  # number of leading dimensions
  grid = tf.reshape(frames, tf.concat([lead, [rows, cols, h, w, c]], axis=0))
  grid = tf.transpose(grid, list(range(k)) + [k, k + 2, k + 1, k + 3, k + 4])  # ..., rows, h, cols, w, C
  grid = tf.reshape(grid, tf.concat([lead, [rows * h, cols * w, c]], axis=0))
  static_h, static_w = frames.shape[-3], frames.shape[-2]
  return tf.ensure_shape(grid, frames.shape[:-4].concatenate([
      None if static_h is None else rows * static_h, None if static_w is None else cols * static_w, frames.shape[-1]]))
