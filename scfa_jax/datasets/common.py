"""The on-disk example format shared by every SCFA dataset builder.

Each example is one video: its frames decoded once at build time, resized and
stored as individual JPEG strings. Training then decodes only the frames a view
samples (16 of a few hundred) instead of whole videos. The input pipeline reads
``frames`` with ``tfds.decode.SkipDecoding`` and gets a 1-D string tensor.

By default frames are stored as ``shorter_side`` x ``shorter_side`` squares at
the paper's tile size (56 px): the paper resizes every frame to a 56x56 tile
(aspect ratio not kept), so doing that once at build time means training only
decodes. On a 2-core machine a 56x56 JPEG decodes in about 35 us, while an
85x64 one (shorter side 64, the previous format) takes about 49 us to decode
plus about 30 us to resize to the tile in TensorFlow, so the stored-at-tile
format roughly doubles the pipeline's throughput (see ``scfa_jax.bench``).
Grids with other tile sizes still work: the pipeline then resizes.
``keep_aspect=True`` stores frames with their aspect ratio instead.

All frames of one example have the same size (the pipeline decodes a view's
frames into one stack).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

FRAMES_KEY = 'frames'
DEFAULT_SHORTER_SIDE = 56  # The paper's tile size: stored frames decode straight into tiles.
DEFAULT_KEEP_ASPECT = False  # Square frames (as the paper's tiles); True keeps the aspect ratio.
DEFAULT_JPEG_QUALITY = 90


def video_features(class_names: Sequence[str] | None, *, labelled: bool = True) -> tfds.features.FeaturesDict:
  """The FeaturesDict every builder declares.

  ``class_names=None`` leaves the label names unset, for datasets whose classes
  are only known from the user's files; ``_split_generators`` then sets
  ``self.info.features['label'].names``. ``labelled=False`` declares no
  ``label`` feature at all: the explicit form of a dataset without labels
  (``data.labels.has_labels``).
  """
  features = {
      FRAMES_KEY: tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=tf.string)),
      'video_id': tfds.features.Text(),
      'num_frames': tfds.features.Scalar(dtype=np.int32),
  }
  if labelled:
    features['label'] = (tfds.features.ClassLabel() if class_names is None
                         else tfds.features.ClassLabel(names=list(class_names)))
  return tfds.features.FeaturesDict(features)


def resize_shorter_side(frame: np.ndarray, shorter_side: int) -> np.ndarray:
  """Resizes so that min(H, W) == shorter_side, keeping the aspect ratio."""
  h, w = frame.shape[:2]
  if min(h, w) == shorter_side:
    return frame
  scale = shorter_side / min(h, w)
  size = (max(shorter_side, round(w * scale)), max(shorter_side, round(h * scale)))
  interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
  return cv2.resize(frame, size, interpolation=interpolation)


def resize_frame(frame: np.ndarray, size: int, *, keep_aspect: bool = DEFAULT_KEEP_ASPECT) -> np.ndarray:
  """Resizes to ``size`` x ``size`` (or, with ``keep_aspect``, to shorter side ``size``)."""
  if keep_aspect:
    return resize_shorter_side(frame, size)
  h, w = frame.shape[:2]
  if (h, w) == (size, size):
    return frame
  interpolation = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
  return cv2.resize(frame, (size, size), interpolation=interpolation)


def encode_frames(frames_rgb: Sequence[np.ndarray], *, shorter_side: int = DEFAULT_SHORTER_SIDE,
                  jpeg_quality: int = DEFAULT_JPEG_QUALITY, keep_aspect: bool = DEFAULT_KEEP_ASPECT) -> list[bytes]:
  """Resizes and JPEG-encodes RGB uint8 frames (OpenCV is ~10x faster than tf.io here).

  Args:
    frames_rgb: the video's frames, RGB uint8 [H, W, 3].
    shorter_side: stored size in px: square frames of this side, or with
      ``keep_aspect`` this shorter side; 0 keeps the frames' own size.
    jpeg_quality: JPEG quality (0-100).
    keep_aspect: keep each frame's aspect ratio instead of storing squares.

  Returns:
    One JPEG string per frame, all of the same size: a frame whose size differs
    from the first one's is resized to it.
  """
  encoded = []
  first_hw = None
  for frame in frames_rgb:
    small = np.asarray(frame)
    if shorter_side:
      small = resize_frame(small, shorter_side, keep_aspect=keep_aspect)
    if first_hw is None:
      first_hw = small.shape[:2]
    elif small.shape[:2] != first_hw:
      small = cv2.resize(small, first_hw[::-1], interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode('.jpg', cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
      raise ValueError(f'OpenCV could not JPEG-encode a frame of shape {small.shape}.')
    encoded.append(buf.tobytes())
  return encoded


def make_example(frames_rgb: Sequence[np.ndarray], *, label: int | str | None, video_id: str,
                 shorter_side: int = DEFAULT_SHORTER_SIDE, jpeg_quality: int = DEFAULT_JPEG_QUALITY,
                 keep_aspect: bool = DEFAULT_KEEP_ASPECT) -> dict:
  """One example in the shared format, ready to yield from ``_generate_examples``.

  See :func:`encode_frames` for ``shorter_side``, ``jpeg_quality`` and ``keep_aspect``; ``label=None``: a
  dataset without labels (``video_features(labelled=False)``).
  """
  if len(frames_rgb) == 0:
    raise ValueError(f'Video {video_id!r} has no frames.')
  example = {
      FRAMES_KEY: encode_frames(frames_rgb, shorter_side=shorter_side, jpeg_quality=jpeg_quality,
                                keep_aspect=keep_aspect),
      'video_id': video_id,
      'num_frames': len(frames_rgb),
  }
  if label is not None:
    example['label'] = label
  return example
