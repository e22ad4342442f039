"""Video files and frame arrays -> the frames evaluation would have stored for them.

A prepared real-video dataset stores each frame shrunk to an S x S square (S =
``config.data.shorter_side``, 56 by default; ``datasets.common``) as JPEG; a
generated one stores its small frames at their own size (``datasets.frame_storage``).
Inference reads a file with the builders' own reader (``datasets.video_io``,
OpenCV's FFmpeg backend), resizes with the builders' own functions and, with
:func:`store`, JPEG-encodes with the builders' own encoder
(``common.encode_frames``, at the quality ``datasets.frame_storage``
names); evaluation's sampling and tiling (``input_pipeline.preprocess_eval``)
then decode the frames they use with the pipeline's own decoder. A source video
thus becomes the very grids evaluation builds from its stored copy.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Iterable, Optional, Sequence, Union

import cv2
import numpy as np

from scfa_jax import datasets
from scfa_jax import errors
from scfa_jax.datasets import common
from scfa_jax.datasets import video_io

Video = Union[str, os.PathLike, np.ndarray]  # a file path, or uint8 frames [T, H, W, 3] (or [T, H, W] grey)


class BadVideoError(errors.BadFilesError):
  """A file that is not a video, or a video without a decodable frame; or a malformed frame array."""


class NoVideosError(errors.MissingFilesError):
  """A path that is neither a video nor a folder holding one."""


def storage(data_config) -> datasets.FrameStorage:
  """How the dataset of ``config.data`` stores frames (``datasets.frame_storage``): what :func:`read` and
  :func:`store` reproduce."""
  return datasets.frame_storage(data_config)


def fit_to_storage(frames: np.ndarray, stored: datasets.FrameStorage) -> np.ndarray:
  """Frames at the size the dataset stores them: squashed to ``side`` x ``side`` as builders do.

  A generated dataset (``own_size``) stores its small frames as they are, so
  frames already within ``side`` are left alone there.
  """
  side = stored.side
  if stored.own_size and frames.shape[1] <= side and frames.shape[2] <= side:
    return frames
  if frames.shape[1:3] == (side, side):
    return frames
  return np.stack([_squash(f, side) for f in frames])


def _squash(frame: np.ndarray, side: int) -> np.ndarray:
  return common.resize_frame(common.resize_shorter_side(frame, side), side)


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


def _read_args(stored: datasets.FrameStorage) -> dict[str, int]:
  # Shrunk as decoded (as builders read), except small frames a generated dataset keeps at their size.
  return {'shorter_side': stored.side, 'keep_up_to': stored.side if stored.own_size else 0}


def _bad_file(e: video_io.VideoReadError) -> BadVideoError:
  return BadVideoError(f'{e} Pass a video file OpenCV can decode (mp4, avi, mkv, ...).')


def read(video: Video, stored: datasets.FrameStorage) -> np.ndarray:
  """uint8 frames [T, s, s, 3] of a file or array, at the size the dataset stores frames (:func:`fit_to_storage`).

  Raises:
    BadVideoError: a missing file, a file OpenCV cannot open as a video, or a
      video with no decodable frame (the message names the file).
  """
  if isinstance(video, (str, os.PathLike)):
    try:
      frames = np.stack(video_io.read_video(video, **_read_args(stored)))
    except video_io.VideoReadError as e:
      raise _bad_file(e) from None
    return fit_to_storage(frames, stored)
  return fit_to_storage(as_frames(video), stored)


def read_used(path: str | os.PathLike, stored: datasets.FrameStorage,
              used: Callable[[int], Iterable[int]]) -> tuple[int, dict[int, np.ndarray]]:
  """(frame count, {index: frame}) of the frames ``used(count)`` names: those :func:`read` gives, less work.

  Only these frames are converted and resized (``video_io.read_sampled_frames``).
  """
  try:
    count, frames = video_io.read_sampled_frames(path, used, **_read_args(stored))
  except video_io.VideoReadError as e:
    raise _bad_file(e) from None
  return count, {i: fit_to_storage(f[None], stored)[0] for i, f in frames.items()}


def store_used(count: int, frames: dict[int, np.ndarray], jpeg_quality: Optional[int]) -> Union[np.ndarray, list[bytes]]:
  """:func:`store` of a video's used frames, in a ``count``-long sequence: unused frames are never decoded,
  so they are empty strings (zero frames without storage)."""
  if jpeg_quality is None:
    first = next(iter(frames.values()))
    out = np.zeros((count,) + first.shape, first.dtype)
    for i, f in frames.items():
      out[i] = f
    return out
  encoded = dict(zip(frames, store(np.stack(list(frames.values())), jpeg_quality)))
  return [encoded.get(i, b'') for i in range(count)]


def store(frames: np.ndarray, jpeg_quality: Optional[int]) -> Union[np.ndarray, list[bytes]]:
  """The frames as the dataset stores them: one JPEG string each (the builders' encoder), or as given (None).

  Encoding takes about 25 us a 56 px frame; only the frames a view samples are
  decoded again (about 60 us each), so a 96-frame video with 4 views costs ~6 ms.
  """
  if jpeg_quality is None:
    return frames
  return common.encode_frames(frames, shorter_side=0, jpeg_quality=jpeg_quality)


def frame_rate(path: str | os.PathLike) -> float:
  """Frames per second of a video file (OpenCV's estimate; 0 when the container does not say)."""
  capture = cv2.VideoCapture(os.fspath(path), cv2.CAP_FFMPEG)
  try:
    return float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
  finally:
    capture.release()


def find_videos(paths: Iterable[str | os.PathLike]) -> list[str]:
  """Expands folders (recursively, sorted) into their video files; files are kept as given (``paths.list_videos``).

  Raises:
    NoVideosError: a path that does not exist or cannot be read, or a folder with no video file.
  """
  from scfa_jax.inference import paths as paths_lib  # pylint: disable=g-import-not-at-top
  listing = paths_lib.list_videos(paths)
  if listing.skipped:
    raise paths_lib.nothing_found(dataclasses.replace(listing, videos=[]))
  return listing.videos


def describe(video: Video, index: int) -> str:
  """The name a video is reported under: its path, or ``array[i]``."""
  return os.fspath(video) if isinstance(video, (str, os.PathLike)) else f'array[{index}]'


def names(videos: Sequence[Video]) -> list[str]:
  return [describe(v, i) for i, v in enumerate(videos)]
