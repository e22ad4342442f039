"""The shared builder of the embedded, generated datasets (synthetic_motion, synthetic_detail).

A generated dataset is a tuple of class names and a function that renders one
clip of a class from a seeded generator; this base turns them into train and
test splits stored like the real datasets (``scfa_jax.datasets.common``), so
they flow through exactly the same input pipeline. Every clip is rendered from
its own ``(seed, split, label, index)`` generator: builds are deterministic.
"""

from __future__ import annotations

import abc
import sys

import numpy as np
import tensorflow_datasets as tfds

from scfa_jax.datasets import common


class GeneratedClips(tfds.core.GeneratorBasedBuilder):
  """Splits of ``train_per_class`` / ``test_per_class`` rendered clips per class (builder config sizes)."""

  CLASS_NAMES: tuple[str, ...] = ()

  @abc.abstractmethod
  def render_clip(self, rng: np.random.Generator, label: int, *, frame_size: int, num_frames: int) -> np.ndarray:
    """One clip of class ``label`` as uint8 RGB frames [T, S, S, 3]."""

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=common.video_features(self.CLASS_NAMES),
        supervised_keys=None,
        description=sys.modules[type(self).__module__].__doc__,  # the dataset module's docstring
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    cfg = self.builder_config
    return {
        'train': self._generate_examples(split_id=0, per_class=cfg.train_per_class),
        'test': self._generate_examples(split_id=1, per_class=cfg.test_per_class),
    }

  def _generate_examples(self, split_id: int, per_class: int):
    cfg = self.builder_config
    for label, name in enumerate(self.CLASS_NAMES):
      for index in range(per_class):
        rng = np.random.default_rng([cfg.seed, split_id, label, index])
        num_frames = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
        frames = self.render_clip(rng, label, frame_size=cfg.frame_size, num_frames=num_frames)
        video_id = f'{name}_{split_id}_{index:04d}'
        yield video_id, common.make_example(frames, label=label, video_id=video_id, shorter_side=0)
