"""Long videos: class probabilities of sliding windows over time, as JSON, CSV and a PNG.

Each window (``window_s`` seconds, every ``stride_s`` seconds) is classified
exactly like a clip: its frames go through evaluation's sampling and tiling
(``Predictor.outputs``). A video shorter than one window gives one window of
the whole video. The video's frames are read once, at the stored size (56 px
squares by default: about 9 kB a frame, 1 GB for an hour at 30 fps).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from scfa_jax import errors
from scfa_jax.inference import paths
from scfa_jax.inference import video as video_lib

DEFAULT_FPS = 25.0  # when a container does not say (OpenCV then reports 0)


@dataclasses.dataclass(frozen=True)
class Timeline:
  """[W] window starts and ends (seconds) and [W, C] class probabilities."""

  video: str
  head: str
  class_names: list[str]
  starts: np.ndarray
  ends: np.ndarray
  probabilities: np.ndarray

  def to_json(self) -> dict:
    return {'video': self.video, 'head': self.head, 'class_names': self.class_names,
            'windows': [{'start_s': round(float(s), 3), 'end_s': round(float(e), 3),
                         'top_class': self.class_names[int(p.argmax())],
                         'probabilities': [round(float(x), 6) for x in p]}
                        for s, e, p in zip(self.starts, self.ends, self.probabilities)]}


def windows(num_frames: int, fps: float, window_s: float, stride_s: float) -> list[tuple[int, int]]:
  """[start, end) frame ranges of the windows; the last one ends at the video's end if the stride skips it."""
  if window_s <= 0 or stride_s <= 0:
    raise errors.ConfigError(f'--window_s and --stride_s must be > 0, got {window_s} and {stride_s}.')
  length, stride = max(1, round(window_s * fps)), max(1, round(stride_s * fps))
  if num_frames <= length:
    return [(0, num_frames)]
  spans = [(s, s + length) for s in range(0, num_frames - length + 1, stride)]
  if spans[-1][1] < num_frames:
    spans.append((num_frames - length, num_frames))
  return spans


def score(predictor, path: str, *, window_s: float, stride_s: float, head: str) -> Timeline:
  """The timeline of one video file (``predictor``: an ``inference.Predictor``); ``video`` is its printable name."""
  with paths.openable(path) as safe:  # OpenCV crashes on a path that is not UTF-8
    frames = video_lib.read(safe, video_lib.storage(predictor.config.data))
    fps = video_lib.frame_rate(safe)
  if fps <= 0:
    logging.warning('%s does not state its frame rate; assuming %g fps.', paths.display(path), DEFAULT_FPS)
    fps = DEFAULT_FPS
  spans = windows(len(frames), fps, window_s, stride_s)
  probabilities = []
  for out in predictor.outputs([frames[a:b] for a, b in spans], predictor.model_of(head)):
    probabilities.append(predictor.probabilities(out.values, head))
  return Timeline(video=paths.display(path), head=head, class_names=list(predictor.class_names),
                  starts=np.asarray([a / fps for a, _ in spans]), ends=np.asarray([b / fps for _, b in spans]),
                  probabilities=np.asarray(probabilities))


def write(timeline: Timeline, prefix: str, *, top: int = 5) -> list[str]:
  """``<prefix>.json``, ``<prefix>.csv`` (start_s, end_s, one column per class) and ``<prefix>.png``."""
  os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
  paths = [prefix + '.json', prefix + '.csv', prefix + '.png']
  with open(paths[0], 'w') as f:
    json.dump(timeline.to_json(), f, indent=1)
  with open(paths[1], 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['start_s', 'end_s', 'top_class'] + timeline.class_names)
    for s, e, p in zip(timeline.starts, timeline.ends, timeline.probabilities):
      writer.writerow([f'{s:.3f}', f'{e:.3f}', timeline.class_names[int(p.argmax())]] + [f'{x:.6f}' for x in p])
  plot(timeline, paths[2], top=top)
  return paths


def plot(timeline: Timeline, path: str, *, top: int = 5) -> None:
  """Probability over time (window centres) of the ``top`` classes with the highest peak."""
  centres = (timeline.starts + timeline.ends) / 2
  shown: Sequence[int] = np.argsort(-timeline.probabilities.max(axis=0), kind='stable')[:top]
  fig = Figure(figsize=(8, 3.2), layout='constrained')
  ax = fig.subplots()
  for c in shown:
    ax.plot(centres, timeline.probabilities[:, c], marker='o', markersize=3, label=timeline.class_names[c])
  ax.set_xlabel('time (s), window centre')
  ax.set_ylabel(f'probability ({timeline.head})')
  ax.set_ylim(0, 1)
  ax.legend(fontsize=8, loc='upper right')
  ax.set_title(os.path.basename(timeline.video), fontsize=9)
  fig.savefig(path, format='png', dpi=100)
