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
from typing import Callable, Container, Iterable, Sequence

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


def _open(path: str | os.PathLike) -> cv2.VideoCapture:
  """An opened capture of a video file; errors name the file."""
  _check_ffmpeg_backend()
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise VideoReadError(f'{path}: no such file.')
  if os.path.getsize(path) == 0:
    raise VideoReadError(f'{path}: the file is empty (0 bytes); re-download or re-extract it.')
  capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
  if not capture.isOpened():
    capture.release()
    raise VideoReadError(f'{path}: OpenCV cannot open it as a video (corrupt, truncated, or not a video file).')
  return capture


def _shorter_side(capture: cv2.VideoCapture, shorter_side: int, keep_up_to: int) -> int:
  """``shorter_side``, or 0 for frames the container says are within ``keep_up_to`` (0: none are)."""
  size = [int(capture.get(p) or 0) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT)]
  return 0 if keep_up_to and 0 < min(size) <= keep_up_to else shorter_side


def read_video(path: str | os.PathLike, *, shorter_side: int = 0, keep_up_to: int = 0) -> list[np.ndarray]:
  """Decodes every frame of a video file (opened once).

  Args:
    path: The video file.
    shorter_side: >0 shrinks each frame as it is decoded so that
      ``min(H, W) == shorter_side`` (the size ``common.make_example`` stores);
      0 keeps the decoded size.
    keep_up_to: Frames whose container-stated shorter side is within this
      stay at their size (0: always shrink), as a generated dataset keeps them.

  Returns:
    The frames in order, as RGB uint8 arrays [H, W, 3].

  Raises:
    VideoReadError: the file is missing, is not a video OpenCV can open, or no
      frame of it decodes (empty or corrupt).
    RuntimeError: this OpenCV build cannot decode videos at all.
  """
  capture = _open(path)
  try:
    shorter_side = _shorter_side(capture, shorter_side, keep_up_to)
    frames = []
    while True:
      ok, frame = capture.read()
      if not ok or frame is None:
        break
      frames.append(_to_rgb_small(frame, shorter_side))
  finally:
    capture.release()
  if not frames:
    raise VideoReadError(f'{os.fspath(path)}: OpenCV opened it but decoded no frame (corrupt or empty video).')
  return frames


def _walk(capture: cv2.VideoCapture, wanted: Container[int], convert: Callable[[np.ndarray], np.ndarray],
          done: dict[int, np.ndarray]) -> int:
  """Decodes the whole stream (``grab``), converting only the ``wanted`` frames not yet in ``done``; the count.

  A wanted frame that decodes but cannot be retrieved ends the stream there, as it ends :func:`read_video`.
  """
  count = 0
  while capture.grab():
    if count in wanted and count not in done:
      ok, frame = capture.retrieve()
      if not ok or frame is None:
        break
      done[count] = convert(frame)
    count += 1
  return count


def read_sampled_frames(path: str | os.PathLike, used: Callable[[int], Iterable[int]], *, shorter_side: int = 0,
                        keep_up_to: int = 0) -> tuple[int, dict[int, np.ndarray]]:
  """(frame count, {index: frame}) of the frames ``used(count)`` names: :func:`read_video`'s frames, less work.

  Every frame is decoded (the count is known only at the end of the stream:
  containers' own counts can be wrong), but only the used ones are converted
  to RGB and shrunk, which is most of :func:`read_video`'s time when a few
  frames are sampled. The first pass trusts the container's count; when the
  true count samples frames that pass did not keep, a second pass over the
  file (opened again) keeps them.

  Args:
    path: The video file.
    used: The indices of the frames needed from a video of ``count`` frames.
    shorter_side, keep_up_to: As in :func:`read_video`.

  Raises:
    VideoReadError: As :func:`read_video`.
  """
  capture = _open(path)
  try:
    shorter_side = _shorter_side(capture, shorter_side, keep_up_to)
    convert = lambda frame: _to_rgb_small(frame, shorter_side)  # pylint: disable=unnecessary-lambda-assignment
    stated = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    done: dict[int, np.ndarray] = {}
    count = _walk(capture, frozenset(used(stated)) if stated > 0 else frozenset(), convert, done)
  finally:
    capture.release()
  if not count:
    raise VideoReadError(f'{os.fspath(path)}: OpenCV opened it but decoded no frame (corrupt or empty video).')
  wanted = frozenset(used(count))
  if not wanted <= done.keys():  # the container's count was wrong (or unknown): decode again for the true one
    capture = _open(path)
    try:
      again = _walk(capture, wanted, convert, done)
    finally:
      capture.release()
    if again != count or not wanted <= done.keys():
      raise VideoReadError(f'{os.fspath(path)}: decoded {count} frames, then {again} (an unstable stream).')
  return count, {i: done[i] for i in sorted(wanted)}


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
