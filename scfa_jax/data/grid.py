"""Frame aggregation: tile a view's frames into one image."""

from __future__ import annotations

import tensorflow as tf


def frames_to_grid(frames: tf.Tensor, rows: int, cols: int) -> tf.Tensor:
  """Tiles ``rows * cols`` frames [N, h, w, C] into one [rows*h, cols*w, C] image.

  Frame k lands at grid row ``k // cols``, column ``k % cols`` (left to right,
  top to bottom), which is how the paper reads time off the grid.
  """
  num, h, w, c = frames.shape
  if num is not None and num != rows * cols:
    raise ValueError(f'A {rows}x{cols} grid needs {rows * cols} frames, got {num}.')
  h = tf.shape(frames)[1] if h is None else h
  w = tf.shape(frames)[2] if w is None else w
  c = tf.shape(frames)[3] if c is None else c
  grid = tf.reshape(frames, [rows, cols, h, w, c])
  grid = tf.transpose(grid, [0, 2, 1, 3, 4])  # rows, h, cols, w, C
  return tf.reshape(grid, [rows * h, cols * w, c])
