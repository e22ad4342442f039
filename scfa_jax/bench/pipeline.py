"""The input-pipeline benchmark: grids/s against the decode bound and the naive loader, and memory.

Measured in one run, on a dataset that ``bench.clips`` generates:

* ``grids_per_s``: grid images per second out of the full training pipeline
  (``input_pipeline.create_train_dataset``, 2 views per video, batched, then
  sharded and prefetched to the local devices), after a warm-up epoch;
* ``decode_bound_grids_per_s``: the same stored frames decoded in a tight loop
  (OpenCV on one thread per core, and TF; the faster counts), no tf.data,
  ``rows * cols`` decodes per grid: the limit of the storage format here;
* ``naive_grids_per_s``: the authors' loader: each sample opens its video with
  OpenCV, decodes it, resizes the sampled frames and tiles them with numpy
  (one thread per core, so the comparison is not against a single thread);
* ``peak_rss_mb`` and the resident memory after every measured epoch (the
  dataset is built by a child process, so the peak is the pipeline's).

Other processes on the machine lower the wall-clock figures: ``load_avg_1m_*``
is recorded next to them, and ``cpu_ms_per_grid`` (CPU time spent by this
process per grid) is far less sensitive to such load.
"""

from __future__ import annotations

import concurrent.futures
import os
import resource
import subprocess
import sys
import tempfile
import shutil
import time
from typing import Callable, Sequence

from absl import flags
import cv2
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from scfa_jax import config as base_config
from scfa_jax.bench import clips
from scfa_jax.data import input_pipeline
from scfa_jax.datasets import common
from scfa_jax.training import parallel

_CLIPS = flags.DEFINE_integer('clips', 240, 'Clips in the generated dataset.')
_MIN_FRAMES = flags.DEFINE_integer('min_frames', 60, 'Shortest clip, in frames.')
_MAX_FRAMES = flags.DEFINE_integer('max_frames', 300, 'Longest clip, in frames.')
_SHORTER_SIDE = flags.DEFINE_integer('shorter_side', common.DEFAULT_SHORTER_SIDE,
                                     'Stored frame size in px, as the builders store it.')
_KEEP_ASPECT = flags.DEFINE_bool('keep_aspect', common.DEFAULT_KEEP_ASPECT,
                                 'Store frames keeping their aspect ratio (shorter side = --shorter_side), not square.')
_JPEG_QUALITY = flags.DEFINE_integer('jpeg_quality', common.DEFAULT_JPEG_QUALITY, 'Stored JPEG quality.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the generated clips.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 32, 'Videos per batch (each gives 2 grids).')
_GRID = flags.DEFINE_integer('grid', 4, 'Grid rows = cols (4: 16 frames per view).')
_TILE_SIZE = flags.DEFINE_integer('tile_size', 56, 'Tile side in px.')
_SAMPLING = flags.DEFINE_enum('sampling', 'segment', ['segment', 'random_sorted', 'uniform'], 'Training sampling.')
_AUGMENT = flags.DEFINE_bool('augment', False, 'Turn on random crop, flip and colour jitter.')
_SECONDS = flags.DEFINE_float('seconds', 20.0, 'Time spent measuring the pipeline, after the warm-up epoch.')
_MIN_EPOCHS = flags.DEFINE_integer('min_epochs', 5, 'Epochs measured at least (memory growth needs several).')
_DECODE_SECONDS = flags.DEFINE_float('decode_seconds', 4.0, 'Time spent measuring the decode bound.')
_NAIVE_CLIPS = flags.DEFINE_integer('naive_clips', 12, 'Clips written as AVI files for the naive baseline.')
_NAIVE_SECONDS = flags.DEFINE_float('naive_seconds', 8.0, 'Time spent measuring the naive baseline.')
_DATA_DIR = flags.DEFINE_string('data_dir', '', "Keep the generated data here and reuse it ('' = a temp dir, deleted).")

_BUILD_FLAGS = ('clips', 'min_frames', 'max_frames', 'shorter_side', 'keep_aspect', 'jpeg_quality', 'seed',
                'naive_clips')


def clips_config() -> clips.BenchClipsConfig:
  return clips.make_config(num_clips=_CLIPS.value, min_frames=_MIN_FRAMES.value, max_frames=_MAX_FRAMES.value,
                           shorter_side=_SHORTER_SIDE.value, keep_aspect=_KEEP_ASPECT.value,
                           jpeg_quality=_JPEG_QUALITY.value, seed=_SEED.value)


def build(data_dir: str) -> None:
  """Prepares the dataset and the naive baseline's AVIs in ``data_dir`` (reused when present)."""
  cfg = clips_config()
  clips.BenchClips(config=cfg, data_dir=data_dir).download_and_prepare()
  clips.write_videos(os.path.join(data_dir, 'videos'), cfg, _NAIVE_CLIPS.value)


def _load() -> float:
  return round(os.getloadavg()[0], 2)


def _rss_mb() -> float:
  with open('/proc/self/statm') as f:
    return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def _cpu_s() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def data_config():
  """``config.data`` of the measured pipeline: the defaults, with the grid and sampling flags."""
  data = base_config.get_config().data
  data.update(name='bench_clips', grid_rows=_GRID.value, grid_cols=_GRID.value, tile_size=_TILE_SIZE.value,
              train_sampling=_SAMPLING.value)
  if _AUGMENT.value:
    data.augment.update(random_crop=True, flip=True, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05)
  return data


def measure_pipeline(builder: tfds.core.DatasetBuilder) -> dict:
  """Steady-state grids/s of the full training pipeline, and its memory epoch by epoch."""
  data = data_config()
  batch = _BATCH_SIZE.value
  steps = input_pipeline.steps_per_epoch(builder, data.train_split, batch)
  dataset = input_pipeline.create_train_dataset(builder, data, local_batch_size=batch, seed=0)
  batches = parallel.prefetch_to_device(dataset.as_numpy_iterator(), data.prefetch_to_device)

  def run_epoch() -> None:
    for _ in range(steps):
      next(batches)['views'].block_until_ready()

  start = time.perf_counter()
  run_epoch()  # Warm-up: reads the files, fills the cache, traces the functions.
  warmup_s = time.perf_counter() - start
  rss = []
  epochs, cpu0, start = 0, _cpu_s(), time.perf_counter()
  while epochs < _MIN_EPOCHS.value or time.perf_counter() - start < _SECONDS.value:
    run_epoch()
    epochs += 1
    rss.append(_rss_mb())
  elapsed, cpu = time.perf_counter() - start, _cpu_s() - cpu0
  third = max(1, len(rss) // 3)
  grids = epochs * steps * batch * 2
  return {
      'grids_per_s': round(grids / elapsed, 1),
      'cpu_ms_per_grid': round(1000 * cpu / grids, 3),
      'warmup_epoch_s': round(warmup_s, 2),
      'steps_per_epoch': steps,
      'epochs_measured': epochs,
      'rss_mb_per_epoch': [round(r, 1) for r in rss],
      # Peak of the last third of the epochs minus peak of the first third: a leak shows, allocator jitter less.
      'rss_growth_mb': round(max(rss[-third:]) - max(rss[:third]), 1),
      'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
  }


def _stored_frames(builder: tfds.core.DatasetBuilder, limit: int) -> list[bytes]:
  frames: list[bytes] = []
  ds = builder.as_dataset(split='train', decoders={common.FRAMES_KEY: tfds.decode.SkipDecoding()},
                          read_config=tfds.ReadConfig(try_autocache=False))
  for example in tfds.as_numpy(ds):
    frames.extend(example[common.FRAMES_KEY])
    if len(frames) >= limit:
      break
  return frames[:limit]


def _rate_on_all_cores(work: Callable[[int, float], int], seconds: float) -> float:
  """Items/s of ``work(worker, deadline) -> items done``, one thread per core."""
  workers = os.cpu_count() or 1
  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    done = sum(pool.map(lambda w: work(w, start + seconds), range(workers)))
  return done / (time.perf_counter() - start)


def measure_decode_bound(builder: tfds.core.DatasetBuilder, frames_per_grid: int) -> dict:
  """Grids/s if decoding the stored frames were the only work: OpenCV and TF, the faster counts."""
  frames = _stored_frames(builder, 4096)
  buffers = [np.frombuffer(f, np.uint8) for f in frames]
  cv2.setNumThreads(1)

  def cv2_work(worker: int, deadline: float) -> int:
    done, i = 0, worker * 997
    while time.perf_counter() < deadline:
      for _ in range(64):
        cv2.imdecode(buffers[i % len(buffers)], cv2.IMREAD_COLOR)
        i += 1
      done += 64
    return done

  cv2_rate = _rate_on_all_cores(cv2_work, _DECODE_SECONDS.value / 2)
  chunk = 256  # One graph of 256 decode ops: TF runs them on its inter-op threads.
  encoded = tf.constant(frames[:chunk])
  decode = tf.function(lambda x: [tf.io.decode_jpeg(x[i], channels=3) for i in range(chunk)])
  decode(encoded)
  done, start = 0, time.perf_counter()
  while time.perf_counter() - start < _DECODE_SECONDS.value / 2:
    decode(encoded)
    done += chunk
  tf_rate = done / (time.perf_counter() - start)
  h, w = cv2.imdecode(buffers[0], cv2.IMREAD_COLOR).shape[:2]
  return {
      'decode_bound_grids_per_s': round(max(cv2_rate, tf_rate) / frames_per_grid, 1),
      'decode_frames_per_s_opencv': round(cv2_rate, 1),
      'decode_frames_per_s_tf': round(tf_rate, 1),
      'stored_frame_hw': [h, w],
      'stored_frame_bytes_mean': round(float(np.mean([len(f) for f in frames])), 1),
  }


def naive_grids(path: str, rng: np.random.Generator, rows: int, cols: int, tile: int) -> list[np.ndarray]:
  """The authors' loader for one sample: decode the whole video, then 2 views resized and tiled with numpy."""
  capture = cv2.VideoCapture(path)
  frames = []
  while True:
    ok, frame = capture.read()
    if not ok:
      break
    frames.append(frame)
  capture.release()
  grids = []
  for _ in range(2):
    edges = np.linspace(0, len(frames), rows * cols + 1)
    indices = np.minimum((edges[:-1] + rng.uniform(size=rows * cols) * np.diff(edges)).astype(int), len(frames) - 1)
    tiles = [cv2.cvtColor(cv2.resize(frames[i], (tile, tile)), cv2.COLOR_BGR2RGB) for i in indices]
    grids.append(np.concatenate([np.concatenate(tiles[r * cols:(r + 1) * cols], axis=1) for r in range(rows)]))
  return grids


def measure_naive(paths: Sequence[str]) -> dict:
  """Grids/s of ``naive_grids`` over the AVIs, one thread per core (OpenCV releases the GIL)."""
  cv2.setNumThreads(1)
  workers = os.cpu_count() or 1

  def work(worker: int, deadline: float) -> int:
    rng, done, i = np.random.default_rng(worker), 0, worker
    while time.perf_counter() < deadline:
      done += len(naive_grids(paths[i % len(paths)], rng, _GRID.value, _GRID.value, _TILE_SIZE.value))
      i += workers
    return done

  return {'naive_grids_per_s': round(_rate_on_all_cores(work, _NAIVE_SECONDS.value), 2)}


def run() -> dict:
  """Builds (or reuses) the data, measures everything; returns the JSON-able results."""
  data_dir = _DATA_DIR.value or tempfile.mkdtemp(prefix='scfa_bench_')
  try:
    results = {'load_avg_1m_start': _load(), 'cpu_count': os.cpu_count()}
    start = time.perf_counter()
    # A child process builds, so that this process's peak memory is the pipeline's.
    subprocess.run([sys.executable, '-m', 'scfa_jax.bench', 'build', f'--data_dir={data_dir}']
                   + [f'--{name}={flags.FLAGS[name].value}' for name in _BUILD_FLAGS], check=True)
    results['build_s'] = round(time.perf_counter() - start, 1)
    cfg = clips_config()
    builder = clips.BenchClips(config=cfg, data_dir=data_dir)
    lengths = [clips.clip_length(cfg.seed, i, cfg.min_frames, cfg.max_frames) for i in range(cfg.num_clips)]
    results.update(clips=cfg.num_clips, mean_frames_per_clip=round(float(np.mean(lengths)), 1),
                   dataset_mb=round(builder.info.dataset_size / 2**20, 1))
    results.update(measure_pipeline(builder))
    results['load_avg_1m_after_pipeline'] = _load()
    results.update(measure_decode_bound(builder, _GRID.value**2))
    results.update(measure_naive(clips.write_videos(os.path.join(data_dir, 'videos'), cfg, _NAIVE_CLIPS.value)))
    results['load_avg_1m_end'] = _load()
    results['fraction_of_decode_bound'] = round(results['grids_per_s'] / results['decode_bound_grids_per_s'], 3)
    results['speedup_vs_naive'] = round(results['grids_per_s'] / results['naive_grids_per_s'], 1)
    # What all cores would give if this process had them to itself.
    results['cpu_bound_grids_per_s'] = round((os.cpu_count() or 1) * 1000 / results['cpu_ms_per_grid'], 1)
    results['settings'] = {name: flags.FLAGS[name].value for name in (
        'shorter_side', 'keep_aspect', 'jpeg_quality', 'batch_size', 'grid', 'tile_size', 'sampling', 'augment')}
    return results
  finally:
    if not _DATA_DIR.value:
      shutil.rmtree(data_dir, ignore_errors=True)
