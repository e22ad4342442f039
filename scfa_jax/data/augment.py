"""Spatial augmentation of one view: one set of random parameters for all its frames.

A view's frames must move together: a crop box, a flip or a colour shift that
changed from frame to frame would add motion the video does not have. So every
function here draws its parameters once per view, from a stateless seed, and
applies them to the whole [N, h, w, 3] stack. The paper does not augment
(its views differ only in time); these are off unless ``config.data.augment``
turns them on.
"""

from __future__ import annotations

import math

import ml_collections
import tensorflow as tf

# Stream ids folded into a view's seed, one per random decision.
_CROP, _FLIP, _COLOUR = 1, 2, 3


def is_enabled(aug_config: ml_collections.ConfigDict) -> bool:
  """Whether any augmentation is on (views are otherwise the whole frame, resized)."""
  return bool(aug_config.random_crop or aug_config.flip or aug_config.brightness or aug_config.contrast
              or aug_config.saturation or aug_config.hue)


def random_crop_box(seed: tf.Tensor, height: tf.Tensor, width: tf.Tensor, *, scale: tuple[float, float],
                    ratio: tuple[float, float]) -> tf.Tensor:
  """An Inception-style crop box [top, left, h, w] inside a ``height x width`` frame.

  The area is a uniform fraction ``scale`` of the frame and the aspect ratio
  (w/h) log-uniform in ``ratio``; a box that would not fit is clipped to the
  frame rather than redrawn, so one draw always suffices.
  """
  seeds = tf.random.experimental.stateless_split(seed, 4)
  h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
  area = h * w * tf.random.stateless_uniform([], seeds[0], scale[0], scale[1])
  aspect = tf.exp(tf.random.stateless_uniform([], seeds[1], math.log(ratio[0]), math.log(ratio[1])))
  crop_h = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32), 1, height)
  crop_w = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32), 1, width)
  top = tf.random.stateless_uniform([], seeds[2], 0, height - crop_h + 1, dtype=tf.int32)
  left = tf.random.stateless_uniform([], seeds[3], 0, width - crop_w + 1, dtype=tf.int32)
  return tf.stack([top, left, crop_h, crop_w])


def crop_and_resize(frames: tf.Tensor, seed: tf.Tensor, size: int, aug_config: ml_collections.ConfigDict) -> tf.Tensor:
  """Random resized crop of uint8 frames [N, h, w, 3] -> float32 [N, size, size, 3], one box for all.

  Bilinear, without antialiasing: frames stored at the tile size (the default
  format) are only ever upscaled by a crop.
  """
  shape = tf.shape(frames)
  top, left, crop_h, crop_w = tf.unstack(random_crop_box(
      tf.random.experimental.stateless_fold_in(seed, _CROP), shape[1], shape[2],
      scale=tuple(aug_config.crop_scale), ratio=tuple(aug_config.crop_ratio)))
  crops = frames[:, top:top + crop_h, left:left + crop_w, :]
  return tf.image.resize(crops, (size, size), method='bilinear')


def flip(frames: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Mirrors every frame left-right with probability 1/2 (one coin for the view)."""
  coin = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(seed, _FLIP)) < 0.5
  return tf.cond(coin, lambda: tf.reverse(frames, axis=[-2]), lambda: frames)


_GREY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale.
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _hue_matrix(turns: tf.Tensor) -> tf.Tensor:
  """Matrix M (rgb_row @ M) rotating the chroma (I, Q) plane of YIQ by ``turns`` of a full circle."""
  to_yiq = tf.constant(_RGB_TO_YIQ, tf.float32)
  angle = 2.0 * math.pi * turns
  c, s = tf.cos(angle), tf.sin(angle)
  rotate = tf.stack([tf.stack([1.0, 0.0, 0.0]), tf.stack([0.0, c, -s]), tf.stack([0.0, s, c])])
  return tf.transpose(tf.linalg.inv(to_yiq) @ rotate @ to_yiq)


def colour_matrix(brightness: tf.Tensor, contrast: tf.Tensor, saturation: tf.Tensor, hue_turns: tf.Tensor,
                  mean_grey: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Brightness, contrast, saturation then hue, composed into one affine map ``rgb_row @ matrix + offset``.

  The steps are torchvision's: brightness scales, contrast blends with the
  mean grey (``mean_grey``, before brightness), saturation blends with each
  pixel's grey, hue rotates the YIQ chroma plane (which keeps luma).
  """
  grey = tf.constant(_GREY, tf.float32)[:, None]  # rgb_row @ grey = luma
  ones = tf.ones([1, 3], tf.float32)
  after_contrast = saturation * tf.eye(3) + (1.0 - saturation) * grey @ ones
  after_contrast = after_contrast @ _hue_matrix(hue_turns)
  matrix = brightness * contrast * after_contrast
  offset = (1.0 - contrast) * brightness * mean_grey * ones @ after_contrast
  return matrix, offset[0]


def colour_map(seed: tf.Tensor, mean_grey: tf.Tensor,
               aug_config: ml_collections.ConfigDict) -> tuple[tf.Tensor, tf.Tensor]:
  """The view's colour jitter as one affine map (see :func:`colour_matrix`).

  Factors are drawn as torchvision's ColorJitter draws them: brightness,
  contrast and saturation uniform in [1-x, 1+x], hue uniform in [-x, x]
  turns. Unlike torchvision, values are clipped once at the end rather than
  after every step: that makes the whole jitter one 3x3 matrix (about 3x cheaper
  than TF's HSV round trips) and the same pixel map for every frame of the view.
  """
  seeds = tf.random.experimental.stateless_split(tf.random.experimental.stateless_fold_in(seed, _COLOUR), 4)

  def draw(i: int, x: float, centre: float) -> tf.Tensor:
    return tf.random.stateless_uniform([], seeds[i], centre - x, centre + x) if x else tf.constant(centre)

  return colour_matrix(draw(0, aug_config.brightness, 1.0), draw(1, aug_config.contrast, 1.0),
                       draw(2, aug_config.saturation, 1.0), draw(3, aug_config.hue, 0.0), mean_grey)


def colour_jitter(frames: tf.Tensor, seed: tf.Tensor, aug_config: ml_collections.ConfigDict) -> tf.Tensor:
  """Applies the view's :func:`colour_map` to float frames [N, h, w, 3] in [0, 255]."""
  pixels = tf.reshape(frames, [-1, 3])  # a matmul and bias_add: far cheaper than broadcasting over channels
  mean_grey = tf.tensordot(tf.reduce_mean(pixels, 0), tf.constant(_GREY, tf.float32), 1) if aug_config.contrast else 0.0
  matrix, offset = colour_map(seed, mean_grey, aug_config)
  return tf.reshape(tf.clip_by_value(tf.nn.bias_add(pixels @ matrix, offset), 0.0, 255.0), tf.shape(frames))


def augment_view(frames: tf.Tensor, seed: tf.Tensor, size: int, aug_config: ml_collections.ConfigDict) -> tf.Tensor:
  """All configured augmentations of one view: uint8 [N, h, w, 3] -> uint8 [N, size, size, 3].

  Without ``random_crop`` the whole frame is used, resized (area averaging)
  only if it is not already ``size`` px square, as in the un-augmented pipeline.
  """
  if aug_config.random_crop:
    x = crop_and_resize(frames, seed, size, aug_config)
  else:
    shape = tf.shape(frames)
    x = tf.cond(tf.logical_and(tf.equal(shape[1], size), tf.equal(shape[2], size)),
                lambda: tf.cast(frames, tf.float32), lambda: tf.image.resize(frames, (size, size), method='area'))
  if aug_config.flip:
    x = flip(x, seed)
  if aug_config.brightness or aug_config.contrast or aug_config.saturation or aug_config.hue:
    x = colour_jitter(x, seed, aug_config)
  return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 255.0)), tf.uint8)
