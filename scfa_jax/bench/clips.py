"""A realistic video dataset generated on the fly, stored exactly as the real builders store it.

HMDB51-like clips: 320x240 RGB at 60-300 frames, with camera pan, moving
objects and sensor noise, so that JPEG sizes and decode times are those of
camera footage rather than of flat or white-noise images. Examples are made by
``common.make_example``, the code path of every real builder; the first few
clips are also written as XviD AVIs (HMDB51's container and codec) for the
naive baseline that decodes videos per sample.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from typing import Iterator

import cv2
import numpy as np
import tensorflow_datasets as tfds

from scfa_jax.datasets import common

HEIGHT, WIDTH = 240, 320  # HMDB51's frame size.
NUM_CLASSES = 8


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  """A natural-looking uint8 background: noise summed over scales (roughly 1/f, like photos)."""
  image = np.zeros((height, width, 3), np.float32)
  for scale, amplitude in ((48, 55.0), (12, 35.0), (3, 20.0), (1, 8.0)):
    noise = rng.normal(0.0, 1.0, (height // scale + 2, width // scale + 2, 3)).astype(np.float32)
    image += amplitude * cv2.resize(noise, (width + 2 * scale, height + 2 * scale),
                                    interpolation=cv2.INTER_CUBIC)[:height, :width]
  return np.clip(image + rng.uniform(60, 190, 3).astype(np.float32), 0, 255).astype(np.uint8)


def clip_length(seed: int, index: int, min_frames: int, max_frames: int) -> int:
  """Frames of clip ``index``: uniform in [min_frames, max_frames], fixed by the seed."""
  return int(np.random.default_rng([seed, index, 1]).integers(min_frames, max_frames + 1))


def render_clip(seed: int, index: int, num_frames: int, height: int = HEIGHT, width: int = WIDTH) -> list[np.ndarray]:
  """Clip ``index`` as RGB uint8 frames: a panning textured scene, two moving shapes and noise."""
  rng = np.random.default_rng([seed, index])
  pan = 120
  scene = _texture(rng, height + pan, width + pan)
  velocity = rng.uniform(-0.5, 0.5, 2)
  noise_bank = [rng.integers(0, 12, (height, width, 3), dtype=np.uint8) for _ in range(4)]
  colours = rng.uniform(0, 255, (2, 3))
  phases = rng.uniform(0, 2 * np.pi, 4)
  frames = []
  for t in range(num_frames):
    x = int(pan / 2 + velocity[0] * t) % pan
    y = int(pan / 2 + velocity[1] * t) % pan
    frame = scene[y:y + height, x:x + width].copy()
    for k in range(2):
      centre = (int(width / 2 + 0.35 * width * np.sin(t / 17 + phases[2 * k])),
                int(height / 2 + 0.3 * height * np.cos(t / 13 + phases[2 * k + 1])))
      cv2.ellipse(frame, centre, (18 + 10 * k, 40 - 8 * k), t * 3 % 360, 0, 360, colours[k].tolist(), -1)
    frames.append(cv2.add(frame, noise_bank[t % len(noise_bank)]))
  return frames


@dataclasses.dataclass
class BenchClipsConfig(tfds.core.BuilderConfig):
  """What the generated dataset holds and how its frames are stored."""

  num_clips: int = 240
  min_frames: int = 60
  max_frames: int = 300
  shorter_side: int = common.DEFAULT_SHORTER_SIDE
  keep_aspect: bool = common.DEFAULT_KEEP_ASPECT
  jpeg_quality: int = common.DEFAULT_JPEG_QUALITY
  seed: int = 0


def make_config(**kwargs) -> BenchClipsConfig:
  """A config named after its fields, so differently stored datasets can share a data_dir."""
  cfg = BenchClipsConfig(name='unnamed', **kwargs)
  name = (f'n{cfg.num_clips}_f{cfg.min_frames}-{cfg.max_frames}_s{cfg.shorter_side}{"a" if cfg.keep_aspect else "q"}'
          f'_q{cfg.jpeg_quality}_seed{cfg.seed}')
  return dataclasses.replace(cfg, name=name)


class BenchClips(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Generated HMDB51-like clips in the shared format: one 'train' split, 8 classes."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(features=common.video_features([f'class_{i}' for i in range(NUM_CLASSES)]),
                                          description=__doc__)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    return {'train': self._generate_examples()}

  def _generate_examples(self) -> Iterator[tuple[str, dict]]:
    cfg = self.builder_config

    def example(index: int) -> dict:
      frames = render_clip(cfg.seed, index, clip_length(cfg.seed, index, cfg.min_frames, cfg.max_frames))
      return common.make_example(frames, label=index % NUM_CLASSES, video_id=f'clip_{index:05d}',
                                 shorter_side=cfg.shorter_side, jpeg_quality=cfg.jpeg_quality,
                                 keep_aspect=cfg.keep_aspect)

    # OpenCV releases the GIL, so threads render and encode on every core; map keeps the order.
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
      for index, ex in enumerate(pool.map(example, range(cfg.num_clips))):
        yield f'clip_{index:05d}', ex


def write_videos(folder: str, cfg: BenchClipsConfig, count: int) -> list[str]:
  """The first ``count`` clips as XviD AVIs at 320x240, 30 fps; existing files are reused."""
  os.makedirs(folder, exist_ok=True)
  paths = []
  for index in range(count):
    length = clip_length(cfg.seed, index, cfg.min_frames, cfg.max_frames)
    path = os.path.join(folder, f'clip_s{cfg.seed}_{index:05d}_{length}.avi')
    if not os.path.exists(path):
      partial = path + '.part.avi'
      writer = cv2.VideoWriter(partial, cv2.VideoWriter_fourcc(*'XVID'), 30.0, (WIDTH, HEIGHT))
      if not writer.isOpened():
        raise RuntimeError('OpenCV cannot write XviD AVI files here; the naive baseline needs them.')
      for frame in render_clip(cfg.seed, index, length):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
      writer.release()
      os.replace(partial, path)
    paths.append(path)
  return paths
