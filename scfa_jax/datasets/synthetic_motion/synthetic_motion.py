"""synthetic_motion: an embedded video dataset whose classes only time can tell apart.

Every clip shows one object that moves right, left, down or up, grows or
shrinks, over a random background with a static and a wandering distractor.
Start position, speed, size, colours and length are random, and the marginal
position and size of the object over a clip are the same for every class, so a
single frame says (almost) nothing about the class: only the order of frames
does. That makes it a small, honest check that a model reads time from the
grid: the single-frame and shuffled-frame baselines sit near chance on it.

Generated deterministically from the builder config's seed, in seconds, and
stored in the same format as the real datasets (``scfa_jax.datasets.common``),
so it flows through exactly the same input pipeline.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from scfa_jax.datasets import generated

CLASS_NAMES = ('move_right', 'move_left', 'move_down', 'move_up', 'grow', 'shrink')


@dataclasses.dataclass
class SyntheticMotionConfig(tfds.core.BuilderConfig):
  """Sizes of the generated dataset."""

  train_per_class: int = 400
  test_per_class: int = 40
  frame_size: int = 32
  min_frames: int = 24
  max_frames: int = 48
  seed: int = 0


def render_clip(rng: np.random.Generator, label: int, *, frame_size: int, num_frames: int) -> np.ndarray:
  """Renders one clip of class ``label`` as uint8 RGB frames [T, S, S, 3]."""
  s = frame_size
  t = np.linspace(0.0, 1.0, num_frames)
  # Object size and path: all classes share the same marginal distributions.
  small, large = 0.18 * s, 0.42 * s
  base_size = rng.uniform(small, large)
  travel = rng.uniform(0.45, 0.65) * s
  start = rng.uniform(0.0, s - travel)  # along the motion axis
  across = rng.uniform(0.0, s - large)  # perpendicular position
  if label in (0, 1, 2, 3):
    along = start + travel * (t if label in (0, 2) else 1.0 - t)
    sizes = np.full(num_frames, base_size)
    if label in (0, 1):
      xs, ys = along - base_size / 2, np.full(num_frames, across)
    else:
      xs, ys = np.full(num_frames, across), along - base_size / 2
  else:
    grow = t if label == 4 else 1.0 - t
    sizes = small + (large - small) * grow
    cx, cy = rng.uniform(large / 2, s - large / 2, size=2)
    xs, ys = cx - sizes / 2, cy - sizes / 2

  background = rng.uniform(0, 255, size=3)
  obj_color = rng.uniform(0, 255, size=3)
  while np.abs(obj_color - background).sum() < 150:  # keep the object visible
    obj_color = rng.uniform(0, 255, size=3)
  static_color = rng.uniform(0, 255, size=3)
  static_pos = rng.uniform(0, s - 0.2 * s, size=2)
  static_size = rng.uniform(0.1, 0.2) * s
  walker_color = rng.uniform(0, 255, size=3)
  walker = rng.uniform(0, s, size=2) + np.cumsum(rng.normal(0, 0.06 * s, size=(num_frames, 2)), axis=0)
  walker = np.mod(walker, s)
  walker_size = max(1.0, 0.08 * s)

  yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)

  def box(x0: float, y0: float, size: float) -> np.ndarray:
    return (xx >= x0) & (xx < x0 + size) & (yy >= y0) & (yy < y0 + size)

  frames = np.empty((num_frames, s, s, 3), np.float32)
  for i in range(num_frames):
    frame = np.broadcast_to(background, (s, s, 3)).copy()
    frame[box(*static_pos, static_size)] = static_color
    frame[box(xs[i], ys[i], sizes[i])] = obj_color
    frame[box(walker[i, 0], walker[i, 1], walker_size)] = walker_color
    frames[i] = frame
  frames += rng.normal(0, 8.0, size=frames.shape)
  return np.clip(frames, 0, 255).astype(np.uint8)


class SyntheticMotion(generated.GeneratedClips):
  """Procedurally generated motion clips (see module docstring)."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.', '1.1.0': '400 training clips per class (was 100, then 200).'}
  BUILDER_CONFIGS = [
      SyntheticMotionConfig(name='default', description='2,640 clips (400 train + 40 test per class) of 24-48 frames at 32x32.'),
      SyntheticMotionConfig(name='tiny', description='For tests: 4+2 clips per class of 8-20 frames at 24x24.',
                            train_per_class=4, test_per_class=2, frame_size=24, min_frames=8, max_frames=20),
  ]
  DEFAULT_CONFIG_NAME = 'default'
  CLASS_NAMES = CLASS_NAMES
  render_clip = staticmethod(render_clip)
