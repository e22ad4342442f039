"""Video files and frame arrays -> the frames evaluation would have stored for them.

A prepared dataset stores each frame shrunk to an S x S square (S =
``config.data.shorter_side``, 56 by default; ``datasets.common``) as JPEG.
Inference reads a file with the builders' own reader (``datasets.video_io``,
OpenCV's FFmpeg backend) and resizes with the builders' own functions, so the
frames differ from the stored ones only by the JPEG round trip; from there the
frames go through evaluation's sampling and tiling (``input_pipeline.preprocess_eval``).
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence, Union

import cv2
import numpy as np

from scfa_jax import errors
from scfa_jax.datasets import common
from scfa_jax.datasets import video_io

Video = Union[str, os.PathLike, np.ndarray]  # a file path, or uint8 frames [T, H, W, 3] (or [T, H, W] grey)


class BadVideoError(errors.BadFilesError):
  """A file that is not a video, or a video without a decodable frame; or a malformed frame array."""


class NoVideosError(errors.MissingFilesError):
  """A path that is neither a video nor a folder holding one."""


def storage_size(data_config) -> int:
  """The side of the square frames a real-video builder stores for ``config.data`` (``clip_builder``)."""
  return int(data_config.get('shorter_side', 0) or common.DEFAULT_SHORTER_SIDE)


def fit_to_storage(frames: np.ndarray, size: int) -> np.ndarray:
  """Frames larger than the stored size squashed to ``size`` x ``size`` as builders store them; smaller ones kept.

  Generated datasets (synthetic_*) store their small frames as they are, so
  frames already within the stored size are left alone.
  """
  if frames.shape[1] <= size and frames.shape[2] <= size:
    return frames
  return np.stack([common.resize_frame(common.resize_shorter_side(f, size), size) for f in frames])


def as_frames(video: np.ndarray, name: str = 'frame array') -> np.ndarray:
  """A uint8 frame array, [T, H, W, 3]: grey ([T, H, W] or [..., 1]) becomes RGB; anything else is refused."""
  frames = np.asarray(video)
  if frames.ndim == 3:
    frames = frames[..., None]
  if frames.ndim != 4 or frames.shape[-1] not in (1, 3) or frames.shape[0] == 0 or 0 in frames.shape[1:3]:
    raise BadVideoError(f'{name}: expected uint8 frames [T, H, W, 3] (or grey [T, H, W]) with T >= 1, '
                        f'got shape {frames.shape}.')
  if frames.dtype != np.uint8:
    raise BadVideoError(f'{name}: expected uint8 pixels in [0, 255], got {frames.dtype}; convert with '
                        'np.clip(x, 0, 255).astype(np.uint8) (or x * 255 for frames in [0, 1]).')
  return np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames


def read(video: Video, size: int) -> np.ndarray:
  """uint8 frames [T, s, s, 3] of a file or array, shrunk to the stored size ``size``.

  Raises:
    BadVideoError: a missing file, a file OpenCV cannot open as a video, or a
      video with no decodable frame (the message names the file).
  """
  if isinstance(video, (str, os.PathLike)):
    try:
      frames = np.stack(video_io.read_video(video, shorter_side=size))
    except video_io.VideoReadError as e:
      raise BadVideoError(f'{e} Pass a video file OpenCV can decode (mp4, avi, mkv, ...).') from None
    return fit_to_storage(frames, size)
  return fit_to_storage(as_frames(video), size)


def frame_rate(path: str | os.PathLike) -> float:
  """Frames per second of a video file (OpenCV's estimate; 0 when the container does not say)."""
  capture = cv2.VideoCapture(os.fspath(path), cv2.CAP_FFMPEG)
  try:
    return float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
  finally:
    capture.release()


def find_videos(paths: Iterable[str | os.PathLike]) -> list[str]:
  """Expands folders (recursively, sorted) into their video files; files are kept as given.

  Raises:
    NoVideosError: a path that does not exist, or a folder with no video file.
  """
  found: list[str] = []
  for path in map(os.fspath, paths):
    if os.path.isdir(path):
      inside = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names
                      if video_io.is_video_file(name))
      if not inside:
        raise NoVideosError(f'{path}: no video file in this folder '
                            f'(looked for {", ".join(video_io.VIDEO_EXTENSIONS)}).')
      found.extend(inside)
    elif os.path.isfile(path):
      found.append(path)
    else:
      raise NoVideosError(f'{path}: no such file or folder.')
  return found


def read_list(path: str) -> list[str]:
  """A text file listing one video (or folder) per line; blank lines and ``#`` comments are ignored."""
  with open(path) as f:
    entries = [line.strip() for line in f]
  base = os.path.dirname(os.path.abspath(path))
  return [e if os.path.isabs(e) else os.path.join(base, e) for e in entries if e and not e.startswith('#')]


def describe(video: Video, index: int) -> str:
  """The name a video is reported under: its path, or ``array[i]``."""
  return os.fspath(video) if isinstance(video, (str, os.PathLike)) else f'array[{index}]'


def names(videos: Sequence[Video]) -> list[str]:
  return [describe(v, i) for i, v in enumerate(videos)]
