"""Pixel normalisation matching the backbone's pretraining.

Works on ``tf.Tensor``, ``np.ndarray`` and ``jax.Array`` alike (arithmetic
only), so the same function runs in the input pipeline, on device inside the
train step, and in the weight-parity tests. Inputs are RGB on the 0-255 scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MODES = ('imagenet', 'caffe', 'unit')

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def normalize(images: Any, mode: str) -> Any:
  """Normalises float or uint8 RGB images [..., 3] in [0, 255].

  Args:
    images: RGB pixels on the 0-255 scale, channels last.
    mode: 'imagenet' (torchvision/timm weights: /255, then mean/std),
      'caffe' (Keras ResNet50 weights: RGB->BGR, minus the Caffe mean) or
      'unit' (/255 only; what the authors' notebooks fed).

  Returns:
    Float32 images of the same shape.
  """
  x = _to_float32(images)
  if mode == 'imagenet':
    mean = np.asarray(IMAGENET_MEAN_RGB, np.float32) * 255.0
    std = np.asarray(IMAGENET_STD_RGB, np.float32) * 255.0
    return (x - mean) / std
  if mode == 'caffe':
    return x[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, np.float32)
  if mode == 'unit':
    return x / 255.0
  raise ValueError(f'Unknown preprocessing {mode!r}; expected one of {MODES}.')


def _to_float32(images: Any) -> Any:
  if hasattr(images, 'astype'):  # np.ndarray, jax.Array
    return images.astype('float32')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (tf.Tensor has no .astype)
  return tf.cast(images, tf.float32)
