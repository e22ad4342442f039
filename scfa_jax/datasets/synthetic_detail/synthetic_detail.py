"""synthetic_detail: an embedded video dataset whose classes need both fine detail and time.

Every clip shows one square that moves right or left over a random background
with a static and a wandering distractor (as ``synthetic_motion``). The
square carries one of three 1-pixel textures: a checkerboard, horizontal lines
or vertical lines. The class is (texture, direction), 6 classes:

* one frame shows the texture but not the direction (start position and path
  are symmetric, so a frame's position says nothing about where it goes);
* a grid of frames shrunk to 24 px tiles shows the direction but not the
  texture: frames are 48x48 px, the square sits on even pixels and every 2x2
  block of each texture holds two light and two dark pixels, so halving the
  resolution (24 px) turns all three into the same flat colour. At 48 px and
  above (the paper's 56 px tiles, or a local view's 48 px tiles in the demo's
  96 px image) the texture is plain to see.

So single-frame and low-detail-grid baselines are capped at about half and a
third of the classes, and a model needs both scales: the case multi-scale
views (``config.data.num_local_views``) are for. Generated deterministically
from the builder config's seed and stored like the real datasets
(``scfa_jax.datasets.common``).
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from scfa_jax.datasets import generated
from scfa_jax.datasets.synthetic_motion.synthetic_motion import SyntheticMotionConfig

TEXTURES = ('checker', 'hlines', 'vlines')
DIRECTIONS = ('right', 'left')
CLASS_NAMES = tuple(f'{texture}_{direction}' for texture in TEXTURES for direction in DIRECTIONS)
TEXTURE_CONTRAST = 60.0  # light and dark pixels are the object's colour +- this (0-255 scale)


def class_parts(label: int) -> tuple[int, int]:
  """(texture index, direction index) of a class: right = 0, left = 1."""
  return divmod(label, len(DIRECTIONS))


def texture(kind: int, size: int) -> np.ndarray:
  """A ``size`` x ``size`` pattern of +1/-1 whose every aligned 2x2 block sums to 0 (``size`` even)."""
  yy, xx = np.mgrid[0:size, 0:size]
  pattern = {0: (xx + yy) % 2, 1: yy % 2, 2: xx % 2}[kind]
  return 2.0 * pattern - 1.0


def _even(x: np.ndarray | float) -> np.ndarray:
  """Snaps positions to even pixels, so the textured square covers whole 2x2 blocks."""
  return (2 * np.round(np.asarray(x) / 2)).astype(int)


def render_clip(rng: np.random.Generator, label: int, *, frame_size: int, num_frames: int) -> np.ndarray:
  """Renders one clip of class ``label`` as uint8 RGB frames [T, S, S, 3] (``frame_size`` S even)."""
  s = frame_size
  kind, direction = class_parts(label)
  t = np.linspace(0.0, 1.0, num_frames)
  size = int(_even(rng.uniform(0.25, 0.4) * s))
  travel = rng.uniform(0.45, 0.65) * (s - size)
  start = rng.uniform(0.0, s - size - travel)
  xs = _even(start + travel * (t if direction == 0 else 1.0 - t))
  y = int(_even(rng.uniform(0.0, s - size)))

  background = rng.uniform(0, 255, size=3)
  obj_color = rng.uniform(TEXTURE_CONTRAST, 255 - TEXTURE_CONTRAST, size=3)  # no clipping: texture means stay equal
  while np.abs(obj_color - background).sum() < 150:
    obj_color = rng.uniform(TEXTURE_CONTRAST, 255 - TEXTURE_CONTRAST, size=3)
  patch = obj_color + TEXTURE_CONTRAST * texture(kind, size)[..., None]
  static_color, static_pos = rng.uniform(0, 255, size=3), rng.uniform(0, 0.8 * s, size=2)
  static_size = rng.uniform(0.1, 0.2) * s
  walker_color = rng.uniform(0, 255, size=3)
  walker = np.mod(rng.uniform(0, s, size=2) + np.cumsum(rng.normal(0, 0.06 * s, size=(num_frames, 2)), axis=0), s)
  walker_size = max(1.0, 0.08 * s)
  yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)

  def box(x0: float, y0: float, side: float) -> np.ndarray:
    return (xx >= x0) & (xx < x0 + side) & (yy >= y0) & (yy < y0 + side)

  frames = np.empty((num_frames, s, s, 3), np.float32)
  for i in range(num_frames):
    frame = np.broadcast_to(background, (s, s, 3)).copy()
    frame[box(*static_pos, static_size)] = static_color
    frame[y:y + size, xs[i]:xs[i] + size] = patch
    frame[box(walker[i, 0], walker[i, 1], walker_size)] = walker_color
    frames[i] = frame
  frames += rng.normal(0, 8.0, size=frames.shape)
  return np.clip(frames, 0, 255).astype(np.uint8)


class SyntheticDetail(generated.GeneratedClips):
  """Procedurally generated clips told apart by a fine texture and the direction of motion (module docstring)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      SyntheticMotionConfig(name='default', description='1,800 clips (250 train + 50 test per class) of 24-48 '
                            'frames at 48x48.', train_per_class=250, test_per_class=50, frame_size=48),
      SyntheticMotionConfig(name='tiny', description='For tests: 4+2 clips per class of 8-20 frames at 16x16.',
                            train_per_class=4, test_per_class=2, frame_size=16, min_frames=8, max_frames=20),
  ]
  DEFAULT_CONFIG_NAME = 'default'
  CLASS_NAMES = CLASS_NAMES
  render_clip = staticmethod(render_clip)
