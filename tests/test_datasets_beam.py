"""Beam builds of the real-video builders: the DirectRunner gives the local build's examples and skip accounting."""

import os

import pytest
import tensorflow_datasets as tfds

from scfa_jax.datasets.video_folder import video_folder
from tests import video_fixtures as vf

pytest.importorskip('apache_beam')  # The beam extra (the test extra installs it).

CLIPS = {'jump': [('a.avi', 5), ('b.mp4', 9), ('c.avi', 20)], 'clap': [(f'c{i}.avi', 9) for i in range(4)]}
BEAM_OPTIONS = 'runner=DirectRunner,direct_num_workers=2,direct_running_mode=multi_threading'


def _build(manual, data_dir, beam: bool, **kwargs):
  builder = video_folder.VideoFolder(data_dir=str(data_dir), **kwargs)
  beam_options = None
  if beam:
    beam_options = tfds.core.lazy_imports.apache_beam.options.pipeline_options.PipelineOptions(
        flags=[f'--{o}' for o in BEAM_OPTIONS.split(',')])
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(manual), beam_options=beam_options))
  return builder


@pytest.mark.slow(seconds=15)
def test_beam_build_equals_local_build(tmp_path):
  templates = vf.VideoTemplates(tmp_path / 'templates', (5, 9, 20))
  vf.make_video_folder(tmp_path / 'manual', templates, CLIPS)
  (tmp_path / 'manual' / 'clap' / 'c2.avi').write_bytes(b'not a video')  # 1 bad clip of 7.
  local = _build(tmp_path / 'manual', tmp_path / 'local', beam=False, max_bad_fraction=0.2)
  on_beam = _build(tmp_path / 'manual', tmp_path / 'beam', beam=True, max_bad_fraction=0.2)
  for split in ('train', 'test'):
    a, b = vf.load_split(local, split), vf.load_split(on_beam, split)
    assert sorted(a) == sorted(b)
    for key in a:
      assert list(a[key]['frames']) == list(b[key]['frames']), key
      assert a[key]['label'] == b[key]['label']
  assert on_beam.info.metadata['skipped_clips'] == local.info.metadata['skipped_clips']
  # The workers' skips reach the policy: gathered once the pipeline is done, then judged per split.
  assert [s['video_id'] for v in on_beam.info.metadata['skipped_clips'].values() for s in v] == ['clap/c2.avi']
  assert not any(name.startswith('.skipped') for name in os.listdir(on_beam.data_dir))
