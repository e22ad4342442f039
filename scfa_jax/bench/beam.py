r"""``python -m scfa_jax.bench beam``: the local paths against Beam's DirectRunner on one machine.

* Build: ``video_folder`` over ``--beam_videos`` (class folders of videos; the
  real sample clips by default) built in the process, on the DirectRunner with
  one worker, and with ``--beam_workers`` worker processes: seconds and clips/s.
* Embedding (with ``--beam_workdir``): ``tools.embed`` into Parquet against
  ``embed_beam``'s pipeline over the same videos, and the largest difference.

  python -m scfa_jax.bench beam --beam_videos=../shared/real_samples --beam_workdir=/tmp/scfa_demo
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import time
from typing import Any

import numpy as np
from absl import flags

flags.DEFINE_string('beam_videos', '../shared/real_samples', 'bench beam: a folder whose */videos/ or class '
                    'folders hold the clips.')
flags.DEFINE_integer('beam_workers', 2, 'bench beam: DirectRunner worker processes of the second Beam build.')
flags.DEFINE_string('beam_workdir', None, 'bench beam: a trained workdir, to also time the embedding.')


def _class_folders(videos: pathlib.Path, dest: pathlib.Path) -> list[pathlib.Path]:
  """Links ``videos/<name>/videos/*`` (the real samples' layout) or ``videos/<class>/*`` into class folders."""
  from scfa_jax.datasets import video_io  # pylint: disable=g-import-not-at-top
  clips = [p for p in sorted(videos.rglob('*')) if p.is_file() and video_io.is_video_file(p.name)]
  for clip in clips:
    parent = clip.parent.parent if clip.parent.name == 'videos' else clip.parent
    (dest / parent.name).mkdir(parents=True, exist_ok=True)
    os.symlink(clip.resolve(), dest / parent.name / clip.name)
  return clips


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return round(time.perf_counter() - start, 1)


def run() -> dict[str, Any]:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from scfa_jax import datasets  # pylint: disable=g-import-not-at-top
  from scfa_jax.datasets.video_folder import video_folder  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  root = pathlib.Path(tempfile.mkdtemp(prefix='bench_beam_'))
  clips = _class_folders(pathlib.Path(f.beam_videos), root / 'manual')
  results: dict[str, Any] = {'clips': len(clips), 'build_s': {}}
  runs = {'local': '', 'direct_1': 'runner=DirectRunner',
          f'direct_{f.beam_workers}_processes': f'runner=DirectRunner,direct_num_workers={f.beam_workers},'
                                               'direct_running_mode=multi_processing'}
  for name, options in runs.items():
    builder = video_folder.VideoFolder(data_dir=str(root / name))
    config = tfds.download.DownloadConfig(manual_dir=str(root / 'manual'), beam_options=datasets.beam_options(options))
    results['build_s'][name] = _timed(lambda: builder.download_and_prepare(download_config=config))  # pylint: disable=cell-var-from-loop
  if f.beam_workdir:
    from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import beam_embed  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import parquet_index  # pylint: disable=g-import-not-at-top
    from scfa_jax.tools import embed  # pylint: disable=g-import-not-at-top
    paths = [str(p) for p in clips]
    predictor = Predictor.from_workdir(f.beam_workdir)
    predictor.embed(paths[:1])  # Compiles.
    local, on_beam = str(root / 'embed.parquet'), str(root / 'embed_beam')
    results['embed_s'] = _timed(lambda: embed.embed_to_file(predictor, paths, local))
    results['embed_beam_direct_s'] = _timed(lambda: beam_embed.run(
        predictor, f.beam_workdir, paths, on_beam, options=PipelineOptions(flags=[], runner='DirectRunner')))
    a, b = parquet_index.load(local), parquet_index.load(on_beam)
    order = [b.names.index(n) for n in a.names]
    results['embed_max_abs_diff'] = float(np.abs(a.features - b.features[order]).max())
  results['load_avg'] = [round(x, 1) for x in os.getloadavg()]
  return results
