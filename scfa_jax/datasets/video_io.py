"""Decodes clips with OpenCV once, at build time, with errors that name the file.

Builders call these functions once per clip; training only ever reads the small
JPEG frames they store. Frames are shrunk as they are decoded, so a long clip
never sits in memory at full resolution (a Penn Action clip at 640x480 would be
~600 MB of raw frames).

OpenCV's FFmpeg backend is used for videos: the ``opencv-python-headless``
wheel bundles FFmpeg, so the DivX/XviD (FMP4) AVIs of HMDB51 and UCF101 decode
without a system FFmpeg.
"""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np

from scfa_jax import errors
from scfa_jax.datasets import common

# File name endings taken as videos when a folder is scanned (lower case).
VIDEO_EXTENSIONS = ('.avi', '.mp4', '.m4v', '.mov', '.mkv', '.webm', '.mpg', '.mpeg', '.wmv', '.flv', '.3gp', '.ogv')


class VideoReadError(Exception):
  """A clip that cannot be decoded. Builders skip it, name it and count it."""


def is_video_file(name: str) -> bool:
  """Whether a file name ends in one of ``VIDEO_EXTENSIONS`` (any case)."""
  return name.lower().endswith(VIDEO_EXTENSIONS)


def _check_ffmpeg_backend() -> None:
  """Without FFmpeg every clip would look corrupt and be skipped; fail at once instead."""
  if not cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG):
    raise errors.MissingDependencyError(
        f'This OpenCV ({cv2.__version__}) has no FFmpeg video backend, so it cannot decode any '
        'video: pip install opencv-python-headless (its wheels bundle FFmpeg).')


def _to_rgb_small(frame_bgr: np.ndarray, shorter_side: int) -> np.ndarray:
  if shorter_side:
    frame_bgr = common.resize_shorter_side(frame_bgr, shorter_side)
  return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def read_video(path: str | os.PathLike, *, shorter_side: int = 0) -> list[np.ndarray]:
  """Decodes every frame of a video file.

  Args:
    path: The video file.
    shorter_side: >0 shrinks each frame as it is decoded so that
      ``min(H, W) == shorter_side`` (the size ``common.make_example`` stores);
      0 keeps the decoded size.

  Returns:
    The frames in order, as RGB uint8 arrays [H, W, 3].

  Raises:
    VideoReadError: the file is missing, is not a video OpenCV can open, or no
      frame of it decodes (empty or corrupt).
    RuntimeError: this OpenCV build cannot decode videos at all.
  """
  _check_ffmpeg_backend()
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise VideoReadError(f'{path}: no such file.')
  if os.path.getsize(path) == 0:
    raise VideoReadError(f'{path}: the file is empty (0 bytes); re-download or re-extract it.')
  capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
  try:
    if not capture.isOpened():
      raise VideoReadError(f'{path}: OpenCV cannot open it as a video (corrupt, truncated, or not a video file).')
    frames = []
    while True:
      ok, frame = capture.read()
      if not ok or frame is None:
        break
      frames.append(_to_rgb_small(frame, shorter_side))
  finally:
    capture.release()
  if not frames:
    raise VideoReadError(f'{path}: OpenCV opened it but decoded no frame (corrupt or empty video).')
  return frames


def read_frame_files(paths: Sequence[str | os.PathLike], *, shorter_side: int = 0) -> list[np.ndarray]:
  """Decodes a clip stored as one image file per frame (e.g. Penn Action's JPEGs).

  Args:
    paths: The frame files, in temporal order.
    shorter_side: As in :func:`read_video`.

  Returns:
    The frames as RGB uint8 arrays [H, W, 3].

  Raises:
    VideoReadError: no paths, or a frame that cannot be decoded, or frames of
      different sizes within the clip.
  """
  if not paths:
    raise VideoReadError('A clip stored as frame files has no frames.')
  frames = []
  first_shape = None
  for path in paths:
    frame = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if frame is None:
      raise VideoReadError(f'{os.fspath(path)}: OpenCV cannot decode this image (corrupt, truncated or empty).')
    if first_shape is None:
      first_shape = frame.shape
    elif frame.shape != first_shape:
      raise VideoReadError(f'{os.fspath(path)}: frame size {frame.shape[:2]} differs from the clip\'s first '
                           f'frame {first_shape[:2]}.')
    frames.append(_to_rgb_small(frame, shorter_side))
  return frames
