"""One stored video -> grid images: gather the sampled frames, decode, resize, augment, tile.

Decoding is where the input pipeline spends its time (each training example
decodes 2 views x 16 frames), so the graph is built for it:

* the frames of all views are decoded by one unrolled list of decode ops (no
  ``tf.map_fn`` loop), which the tf.data runtime runs in parallel;
* frames stored at the tile size (``scfa_jax.datasets.common`` stores them
  that way by default) skip resizing altogether: a resize costs about as much
  as the decode of a 56 px JPEG;
* everything after decoding works on whole [views, frames, ...] stacks.
"""

from __future__ import annotations

import ml_collections
import tensorflow as tf

from scfa_jax.data import augment
from scfa_jax.data import grid as grid_lib
from scfa_jax.data import layout


def decode_frames(encoded: tf.Tensor) -> tf.Tensor:
  """Decodes M encoded frames (static M; JPEG, PNG, BMP or GIF) to uint8 [M, h, w, 3].

  The frames of one video share one size (``common.make_example`` stores them
  so, and any video decoder yields them so).
  """
  num = encoded.shape[0]
  if num is None:
    raise ValueError('decode_frames needs a static number of frames (it unrolls one decode op per frame).')
  return tf.stack([tf.io.decode_image(encoded[i], channels=3, expand_animations=False) for i in range(num)])


def resize_frames(frames: tf.Tensor, size: int) -> tf.Tensor:
  """uint8 [M, h, w, 3] -> uint8 [M, size, size, 3]; frames already that size pass through untouched."""

  def resize() -> tf.Tensor:
    return tf.cast(tf.round(tf.image.resize(frames, (size, size), method='area')), tf.uint8)

  shape = tf.shape(frames)
  return tf.cond(tf.logical_and(tf.equal(shape[1], size), tf.equal(shape[2], size)), lambda: frames, resize)


def make_views(encoded: tf.Tensor, indices: tf.Tensor, spec: layout.GridSpec, *,
               aug_config: ml_collections.ConfigDict | None = None, seeds: tf.Tensor | None = None) -> tf.Tensor:
  """Grid images of V views of one video.

  Args:
    encoded: all frames of the video: encoded (a 1-D string tensor, as datasets
      store them) or already decoded (uint8 [T, h, w, 3], as ``scfa_jax.inference``
      reads video files); everything after decoding is the same.
    indices: int32 [V, spec.num_frames], the frames of each view in tile order.
    spec: the grid.
    aug_config: ``config.data.augment``; None or all-off means no augmentation.
    seeds: int [V, 2] stateless seeds, one per view; required with augmentation.

  Returns:
    uint8 [V, rows * tile, cols * tile, 3].
  """
  num_views, num_frames = indices.shape
  if num_frames != spec.num_frames:
    raise ValueError(f'A {spec.rows}x{spec.cols} grid needs {spec.num_frames} frames per view, got {num_frames}.')
  chosen = tf.gather(encoded, tf.reshape(indices, [-1]))
  frames = decode_frames(chosen) if chosen.dtype == tf.string else chosen
  if aug_config is not None and augment.is_enabled(aug_config):
    if seeds is None:
      raise ValueError('Augmentation needs one seed per view.')
    frames = tf.reshape(frames, tf.concat([[num_views, num_frames], tf.shape(frames)[1:]], axis=0))
    tiles = tf.stack([augment.augment_view(frames[v], seeds[v], spec.tile_size, aug_config)
                      for v in range(num_views)])
  else:
    tiles = resize_frames(frames, spec.tile_size)
  tiles = tf.reshape(tiles, [num_views, num_frames, spec.tile_size, spec.tile_size, 3])
  return grid_lib.frames_to_grid(tiles, spec.rows, spec.cols)
