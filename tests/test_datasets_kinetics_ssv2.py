"""Kinetics and Something-Something v2 builders on tiny copies of the official layouts (real .mp4/.webm files)."""

import json

import pytest
import tensorflow_datasets as tfds

from scfa_jax import errors
from scfa_jax.datasets import clip_builder
from scfa_jax.datasets.kinetics import kinetics
from scfa_jax.datasets.ssv2 import ssv2
from tests import video_fixtures as vf


@pytest.fixture(scope='module')
def mp4s(tmp_path_factory):
  return vf.VideoTemplates(tmp_path_factory.mktemp('mp4'), (5, 9, 20), suffix='.mp4', fourcc='mp4v')


@pytest.fixture(scope='module')
def webms(tmp_path_factory):
  return vf.VideoTemplates(tmp_path_factory.mktemp('webm'), (5, 9, 20), suffix='.webm', fourcc='VP90')


def _build(cls, manual, data_dir, **kwargs):
  builder = cls(data_dir=str(data_dir), **kwargs)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  return builder


@pytest.mark.parametrize('layout', vf.KINETICS_LAYOUTS)
def test_kinetics_layouts_missing_clips_and_unlabelled_test(tmp_path, mp4s, layout):
  expected = vf.make_kinetics(tmp_path / 'manual', mp4s, layout=layout)
  builder = _build(kinetics.Kinetics, tmp_path / 'manual', tmp_path / 'data')
  assert builder.info.features['label'].names == sorted({r.label for r in vf.KINETICS_ROWS})
  assert vf.summary(builder) == vf.by_split(expected)  # No 'test': its CSV has no labels.
  assert builder.info.metadata['missing_clips'] == {'train': ['gone1_000003_000013'],
                                                    'validation': ['v3_000002_000012']}
  reloaded = kinetics.Kinetics(data_dir=str(tmp_path / 'data'))
  assert reloaded.info.metadata['missing_clips']['train'] == ['gone1_000003_000013']


def test_kinetics_labelled_test_and_missing_bound(tmp_path, mp4s):
  expected = vf.make_kinetics(tmp_path / 'manual', mp4s, layout='flat', test_labels=True)
  builder = _build(kinetics.Kinetics, tmp_path / 'manual', tmp_path / 'data', config='k600')
  assert vf.summary(builder)['test'] == vf.by_split(expected)['test']
  # 1 of 4 validation clips is missing: over a 0.2 bound, named in the error.
  with pytest.raises(clip_builder.MissingClipsError, match=r"1 of 4 clips of split 'validation'.*v3_000002_000012"):
    _build(kinetics.Kinetics, tmp_path / 'manual', tmp_path / 'strict', max_missing_fraction=0.2)


def test_kinetics_bad_csv(tmp_path, mp4s):
  vf.make_kinetics(tmp_path / 'manual', mp4s)
  (tmp_path / 'manual' / 'kinetics400' / 'validate.csv').write_text('label,youtube,start\nx,y,1\n')
  with pytest.raises(errors.BadFilesError, match=r'validate\.csv: expected a Kinetics CSV'):
    _build(kinetics.Kinetics, tmp_path / 'manual', tmp_path / 'data')
  (tmp_path / 'manual' / 'kinetics400' / 'validate.csv').write_text(
      'label,youtube_id,time_start,time_end,split\nnot a class,v1,7,17,val\n')
  with pytest.raises(errors.BadFilesError, match=r"labels that .*train\.csv does not have: \['not a class'\]"):
    _build(kinetics.Kinetics, tmp_path / 'manual', tmp_path / 'data')


def test_ssv2_official_layout(tmp_path, webms):
  expected = vf.make_ssv2(tmp_path / 'manual', webms)
  (tmp_path / 'manual' / '20bn-something-something-v2' / '100.webm').write_bytes(b'truncated')
  del expected['100']
  builder = _build(ssv2.Ssv2, tmp_path / 'manual', tmp_path / 'data', max_bad_fraction=0.3)
  assert builder.info.features['label'].names == list(vf.SSV2_CLASSES)
  assert vf.summary(builder) == vf.by_split(expected)  # Template -> id; the unlabelled test is not stored.
  assert [s['video_id'] for s in builder.info.metadata['skipped_clips']['train']] == ['100']


def test_ssv2_missing_video_and_unknown_template(tmp_path, webms):
  vf.make_ssv2(tmp_path / 'manual', webms)
  (tmp_path / 'manual' / '20bn-something-something-v2' / '5.webm').unlink()
  with pytest.raises(clip_builder.MissingClipsError, match=r"1 of 2 clips of split 'validation'.*\b5\b"):
    _build(ssv2.Ssv2, tmp_path / 'manual', tmp_path / 'data')
  train = tmp_path / 'manual' / 'labels' / 'something-something-v2-train.json'
  train.write_text(json.dumps([{'id': '1', 'template': 'Juggling [something]'}]))
  with pytest.raises(errors.BadFilesError, match=r"id 1\) has the class 'Juggling something'"):
    _build(ssv2.Ssv2, tmp_path / 'manual', tmp_path / 'data')
