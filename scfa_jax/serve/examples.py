"""Example clips for the page: a few test-split videos of the workdir's dataset, written as WebM files.

The page offers them to click on, so a model can be tried without a video at
hand. One video per class (the first of each, in split order) up to ``count``,
decoded from the prepared dataset and written once into a cache folder
(VP9 WebM: what OpenCV writes without extra codecs and every browser plays).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Optional

import numpy as np

FPS = 25.0  # the datasets store no frame rate; 25 fps is the inference package's default too


def _safe(name: str) -> str:
  return re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:80]


def write_clip(frames: np.ndarray, path: str, fps: float = FPS) -> str:
  """uint8 RGB frames [T, H, W, 3] -> a VP9 WebM file at ``path`` (returned)."""
  import cv2  # pylint: disable=g-import-not-at-top
  height, width = frames.shape[1:3]
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'VP90'), fps, (width, height))
  if not writer.isOpened():
    raise OSError(f'OpenCV cannot write {path}')
  try:
    for frame in frames:
      writer.write(np.ascontiguousarray(frame[..., ::-1]))
  finally:
    writer.release()
  return path


def test_split_examples(config, folder: str, *, count: int = 4, class_names: Optional[list[str]] = None) -> list[str]:
  """Paths of up to ``count`` test-split videos (one per class) written into ``folder``; [] when unavailable.

  Files already there are reused. A dataset that is not on this machine gives
  no examples (a warning), not an error: the page works without them.
  """
  if count <= 0:
    return []
  existing = sorted(os.path.join(folder, f) for f in os.listdir(folder)) if os.path.isdir(folder) else []
  if len(existing) >= count:
    return existing[:count]
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    from scfa_jax import datasets  # pylint: disable=g-import-not-at-top
    builder = datasets.get_builder(config.data)
    key = config.data.frames_key
    dataset = builder.as_dataset(split=config.data.test_split, shuffle_files=False,
                                 decoders={key: tfds.decode.SkipDecoding()})
    os.makedirs(folder, exist_ok=True)
    written, seen = [], set()
    for example in dataset.as_numpy_iterator():
      label = int(example['label'])
      if label in seen:
        continue
      seen.add(label)
      frames = np.stack([tf.io.decode_image(f, channels=3).numpy() for f in example[key]])
      name = class_names[label] if class_names and label < len(class_names) else f'class{label}'
      clip_id = example['video_id'].decode() if 'video_id' in example else str(len(written))
      written.append(write_clip(frames, os.path.join(folder, _safe(f'{name}__{clip_id}') + '.webm')))
      if len(written) == count:
        break
    return written
  except Exception as e:  # pylint: disable=broad-except  (examples are a convenience; the page works without)
    logging.warning('No example clips: the test split of %s is not readable here (%s).', config.data.name, e)
    return []
