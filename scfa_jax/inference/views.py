"""Videos -> batches of evaluation's grid images, decoded in threads while the model runs.

The grids come from ``input_pipeline.preprocess_eval``, the function that makes
evaluation's test views, given a video's frames stored as its dataset stores
them (``video.store``: JPEG for our builders) and decoded there by the
pipeline's own decoder, so a source file gets evaluation's grids: the same
frame sampling (``config.data.eval_sampling``, or the K interleaved clips of
``config.eval.num_test_clips``), the same local views (``config.eval.local_views``),
resizing and tiling. OpenCV releases the GIL
while it decodes, so a few threads read the next videos while TensorFlow tiles
and the devices embed the current batch.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import itertools
import os
import time
from typing import Callable, Iterator, Optional, Sequence

import ml_collections
import numpy as np
import tensorflow as tf

from scfa_jax import datasets
from scfa_jax.data import input_pipeline
from scfa_jax.inference import paths
from scfa_jax.inference import video as video_lib


@dataclasses.dataclass(frozen=True)
class ViewSpec:
  """Which test-time views each video gets: evaluation's ``averaged`` views when it has more than one."""

  num_clips: int
  num_local_views: int

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, *, single_view: bool = False) -> 'ViewSpec':
    if single_view:
      return cls(1, 0)
    return cls(int(config.eval.num_test_clips), int(config.eval.get('local_views', 0)))

  @property
  def per_video(self) -> int:
    return self.num_clips + self.num_local_views


@dataclasses.dataclass
class Item:
  """One video of a run: its grids [V, H, W, 3], or why it could not be read."""

  index: int
  name: str
  frames: Optional[np.ndarray | list[bytes]] = None  # as stored (``video.store``), dropped once tiled
  grids: Optional[np.ndarray] = None
  error: Optional[Exception] = None


def grid_fn(data_config: ml_collections.ConfigDict, views: ViewSpec):
  """A traced ``frames -> grids uint8 [V, H, W, 3]``: encoded frames string [T], or uint8 [T, h, w, 3]."""

  @tf.function(reduce_retracing=True, autograph=False)  # no AutoGraph: scfa_jax/data/traced.py says why
  def make(frames: tf.Tensor) -> tf.Tensor:
    example = {data_config.frames_key: frames, 'label': tf.constant(0)}
    image = input_pipeline.preprocess_eval(example, data_config=data_config, num_clips=views.num_clips,
                                           num_local_views=views.num_local_views)['image']
    return image[None] if views.per_video == 1 else image

  return make


def used_frames_fn(data_config: ml_collections.ConfigDict, views: ViewSpec) -> Callable[[int], list[int]]:
  """``count -> indices`` of the frames :func:`grid_fn` decodes from a video of ``count`` frames."""

  @tf.function(input_signature=[tf.TensorSpec([], tf.int32)], autograph=False)
  def used(count: tf.Tensor) -> tf.Tensor:
    return input_pipeline.eval_frames_used(count, data_config=data_config, num_clips=views.num_clips,
                                           num_local_views=views.num_local_views)

  @functools.lru_cache(maxsize=1024)  # a few ms a call: videos of the same length share it
  def indices(count: int) -> list[int]:
    return used(tf.constant(count, tf.int32)).numpy().tolist()

  return indices


@dataclasses.dataclass(frozen=True)
class Tiler:
  """Evaluation's frames -> grids for one view spec, traced once and reused for every video of a process.

  Building it traces a ``tf.function`` (1-7 s on 2 cores), so a long-lived
  caller (a :class:`~scfa_jax.inference.predictor.Predictor`, the web page)
  holds one instead of tracing again for every call of :func:`items`.
  """

  make: Callable[[tf.Tensor], tf.Tensor]
  used: Callable[[int], list[int]]

  @classmethod
  def build(cls, data_config: ml_collections.ConfigDict, views: ViewSpec) -> 'Tiler':
    return cls(make=grid_fn(data_config, views), used=used_frames_fn(data_config, views))


def _decode(video: video_lib.Video, index: int, stored: datasets.FrameStorage, jpeg_quality: Optional[int],
            used: Callable[[int], list[int]]) -> Item:
  """A video's frames as stored: of a file, only the frames its views use (the rest are placeholders)."""
  name = video_lib.describe(video, index)
  try:
    if isinstance(video, (str, bytes, os.PathLike)):
      with paths.openable(video) as safe:  # OpenCV crashes on a path that is not UTF-8
        return Item(index, name, frames=video_lib.store_used(*video_lib.read_used(safe, stored, used), jpeg_quality))
    return Item(index, name, frames=video_lib.store(video_lib.read(video, stored), jpeg_quality))
  except video_lib.BadVideoError as e:
    return Item(index, name, error=e)


def items(videos: Sequence[video_lib.Video], config: ml_collections.ConfigDict, views: ViewSpec, *,
          threads: int = 4, jpeg_quality: Optional[int] = None, tiler: Optional[Tiler] = None) -> Iterator[Item]:
  """Each video's grids, in order; a video that cannot be read yields its error instead of stopping the rest.

  ``jpeg_quality``: store frames as JPEG of this quality before tiling, as the
  dataset does (``datasets.frame_storage``); None tiles them as read.
  ``tiler``: one built for ``config.data`` and ``views`` (:class:`Tiler`), or None to trace one for this call.
  """
  stored = video_lib.storage(config.data)
  tiler = tiler or Tiler.build(config.data, views)
  make = tiler.make
  with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
    decode = functools.partial(_decode, stored=stored, jpeg_quality=jpeg_quality, used=tiler.used)
    pending = [pool.submit(decode, v, i) for i, v in itertools.islice(enumerate(videos), 2 * threads)]
    rest = itertools.islice(enumerate(videos), 2 * threads, None)
    while pending:
      item = pending.pop(0).result()
      nxt = next(rest, None)
      if nxt is not None:
        pending.append(pool.submit(decode, nxt[1], nxt[0]))
      if item.error is None:
        item.grids, item.frames = make(tf.constant(item.frames)).numpy(), None
      yield item


def batches(stream: Iterator[Item], batch_size: int, max_wait_s: Optional[float] = None) -> Iterator[list[Item]]:
  """Groups readable items by ``batch_size`` videos; unreadable ones travel alone (no grids to run).

  ``max_wait_s``: a batch also goes once its first video has waited this long
  (slow decoding must not hold finished videos back from a file that saves them).
  """
  batch: list[Item] = []
  started = 0.0
  for item in stream:
    if item.error is not None:
      yield [item]
      continue
    if not batch:
      started = time.monotonic()
    batch.append(item)
    if len(batch) == batch_size or (max_wait_s is not None and time.monotonic() - started >= max_wait_s):
      yield batch
      batch = []
  if batch:
    yield batch


def padded_size(n: int, batch_size: int, multiple: int) -> int:
  """The batch shape ``n`` images run in: the next power of two (so few shapes compile), a device multiple."""
  size = 1
  while size < n:
    size *= 2
  size = min(size, max(batch_size, n))
  return -(-size // multiple) * multiple


def stack(batch: list[Item], batch_size: int, multiple: int) -> tuple[np.ndarray, int]:
  """[B', H, W, 3] images of the batch's views (video-major), zero-padded; and the real image count."""
  images = np.concatenate([item.grids for item in batch])
  n = len(images)
  size = padded_size(n, batch_size, multiple)
  if size > n:
    images = np.concatenate([images, np.zeros((size - n,) + images.shape[1:], images.dtype)])
  return images, n
