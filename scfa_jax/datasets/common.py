"""The on-disk example format shared by every SCFA dataset builder.

Each example is one video: its frames decoded once at build time, shrunk so the
shorter side is ``shorter_side`` pixels, and stored as individual JPEG strings.
Training then decodes only the frames a view samples (16 of a few hundred)
instead of whole videos. The input pipeline reads ``frames`` with
``tfds.decode.SkipDecoding`` and gets a 1-D string tensor.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

FRAMES_KEY = 'frames'
DEFAULT_SHORTER_SIDE = 64  # Enough for 56 px tiles with a little room for crops.
DEFAULT_JPEG_QUALITY = 90


def video_features(class_names: Sequence[str] | None) -> tfds.features.FeaturesDict:
  """The FeaturesDict every builder declares.

  ``class_names=None`` leaves the label names unset, for datasets whose classes
  are only known from the user's files; ``_split_generators`` then sets
  ``self.info.features['label'].names``.
  """
  label = tfds.features.ClassLabel() if class_names is None else tfds.features.ClassLabel(names=list(class_names))
  return tfds.features.FeaturesDict({
      FRAMES_KEY: tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=tf.string)),
      'label': label,
      'video_id': tfds.features.Text(),
      'num_frames': tfds.features.Scalar(dtype=np.int32),
  })


def resize_shorter_side(frame: np.ndarray, shorter_side: int) -> np.ndarray:
  """Resizes so that min(H, W) == shorter_side, keeping the aspect ratio."""
  h, w = frame.shape[:2]
  if min(h, w) == shorter_side:
    return frame
  scale = shorter_side / min(h, w)
  size = (max(shorter_side, round(w * scale)), max(shorter_side, round(h * scale)))
  interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
  return cv2.resize(frame, size, interpolation=interpolation)


def encode_frames(frames_rgb: Sequence[np.ndarray], *, shorter_side: int = DEFAULT_SHORTER_SIDE,
                  jpeg_quality: int = DEFAULT_JPEG_QUALITY) -> list[bytes]:
  """Shrinks and JPEG-encodes RGB uint8 frames (OpenCV is ~10x faster than tf.io here)."""
  encoded = []
  for frame in frames_rgb:
    small = resize_shorter_side(np.asarray(frame), shorter_side) if shorter_side else np.asarray(frame)
    ok, buf = cv2.imencode('.jpg', cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
      raise ValueError(f'OpenCV could not JPEG-encode a frame of shape {small.shape}.')
    encoded.append(buf.tobytes())
  return encoded


def make_example(frames_rgb: Sequence[np.ndarray], *, label: int | str, video_id: str,
                 shorter_side: int = DEFAULT_SHORTER_SIDE, jpeg_quality: int = DEFAULT_JPEG_QUALITY) -> dict:
  """One example in the shared format, ready to yield from ``_generate_examples``."""
  if len(frames_rgb) == 0:
    raise ValueError(f'Video {video_id!r} has no frames.')
  return {
      FRAMES_KEY: encode_frames(frames_rgb, shorter_side=shorter_side, jpeg_quality=jpeg_quality),
      'label': label,
      'video_id': video_id,
      'num_frames': len(frames_rgb),
  }
