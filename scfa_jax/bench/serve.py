"""``python -m scfa_jax.bench serve --serve_workdir=W``: how long the web page takes to answer a 10-second clip.

Times ``serve.page.Page.answer`` (what the page's server does for an upload:
read the file, evaluation's grids, the model, the head, the nearest train
videos with their grids, and the timeline plot) after ``Page.warm_up`` (as the
command warms up before serving), on a
camera-like 320x240 clip of ``--serve_seconds`` at 25 fps (``bench.clips``),
written as VP9 WebM. The browser's upload and drawing are not included.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

from absl import flags
import numpy as np

from scfa_jax.bench import harness

flags.DEFINE_string('serve_workdir', None, 'bench serve: a trained and evaluated workdir.')
flags.DEFINE_float('serve_seconds', 10.0, 'bench serve: length of the clip answered.')
flags.DEFINE_integer('serve_repeats', 3, 'bench serve: timed answers (after one warm-up).')


def run() -> dict[str, Any]:
  from scfa_jax.bench import clips  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import video as video_lib  # pylint: disable=g-import-not-at-top
  from scfa_jax.serve import examples  # pylint: disable=g-import-not-at-top
  from scfa_jax.serve import page as page_lib  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  if not f.serve_workdir:
    raise ValueError('bench serve needs --serve_workdir (a trained and evaluated workdir).')
  page = page_lib.Page.from_workdir(f.serve_workdir)
  frames = np.stack(clips.render_clip(0, 0, int(round(f.serve_seconds * examples.FPS))))
  path = examples.write_clip(frames, os.path.join(tempfile.mkdtemp(prefix='bench_serve_'), 'clip.webm'))
  warm_up_s = page.warm_up()  # what the command does before it serves
  start = time.perf_counter()
  first = page.answer(path)
  first_s = time.perf_counter() - start
  if first.message:
    raise ValueError(first.message)
  full = harness.time_calls(lambda: page.answer(path), warmup=0, reps=f.serve_repeats)
  no_timeline = harness.time_calls(lambda: page.answer(path, window_s=2 * f.serve_seconds), warmup=0,
                                   reps=f.serve_repeats)
  read = harness.time_calls(lambda: video_lib.read(path, video_lib.storage(page.predictor.config.data)), warmup=0,
                            reps=f.serve_repeats)
  return {
      'bench': 'serve', 'workdir': f.serve_workdir, 'clip_seconds': f.serve_seconds, 'frames': len(frames),
      'frame_size': [int(frames.shape[2]), int(frames.shape[1])], 'head': first.head,
      'timeline_windows': 0 if first.timeline is None else len(first.timeline.starts),
      'warm_up_s': round(warm_up_s, 1), 'first_answer_after_warm_up_s': round(first_s, 3),
      'answer_s_median': round(statistics.median(full), 3), 'answer_s_min': round(min(full), 3),
      'answer_without_timeline_s_median': round(statistics.median(no_timeline), 3),
      'read_video_s_median': round(statistics.median(read), 3),
      'load_average_1min': round(os.getloadavg()[0], 1), 'cpus': os.cpu_count(),
  }
