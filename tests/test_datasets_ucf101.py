"""ucf101_manual builder: UCF-101/ + ucfTrainTestlist/ (or UCF101.rar + the split zip), offline."""

import pytest
import tensorflow_datasets as tfds

from scfa_jax.datasets.ucf101 import ucf101
from tests import video_fixtures as vf


@pytest.fixture(scope='module')
def templates(tmp_path_factory):
  return vf.VideoTemplates(tmp_path_factory.mktemp('templates'), set(vf.UCF101_LENGTHS.values()))


def _build(manual_dir, data_dir, config='split1'):
  builder = ucf101.Ucf101Manual(data_dir=str(data_dir), config=config)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def test_extracted_folders(tmp_path, templates):
  expected = vf.make_ucf101(tmp_path / 'manual', templates)
  builder = _build(tmp_path / 'manual', tmp_path / 'data', config='split3')
  assert builder.info.features['label'].names == list(ucf101.CLASS_NAMES)
  assert vf.summary(builder) == vf.by_split(expected[3])


def test_archives_as_downloaded(tmp_path, templates):
  expected = vf.make_ucf101(tmp_path / 'manual', templates, archived=True)
  builder = _build(tmp_path / 'manual', tmp_path / 'data')
  assert vf.summary(builder) == vf.by_split(expected[1])


def test_file_names_differing_in_case_are_found(tmp_path, templates):
  expected = vf.make_ucf101(tmp_path / 'manual', templates)
  folder = tmp_path / 'manual' / 'UCF-101' / 'HandstandPushups'
  for clip in folder.iterdir():  # Re-packed copies spell it v_HandstandPushups_*, the lists v_HandStandPushups_*.
    clip.rename(folder / clip.name.replace('HandstandPushups', 'HandStandPushups'))
  builder = _build(tmp_path / 'manual', tmp_path / 'data')
  assert vf.summary(builder) == vf.by_split(expected[1])


def test_list_naming_a_missing_clip(tmp_path, templates):
  vf.make_ucf101(tmp_path / 'manual', templates)
  (tmp_path / 'manual' / 'UCF-101' / 'Diving' / 'v_Diving_g15_c01.avi').unlink()
  with pytest.raises(FileNotFoundError,
                     match=r'trainlist01\.txt:\d+ names Diving/v_Diving_g15_c01\.avi, but .* does not exist'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_class_folder_without_videos(tmp_path, templates):
  vf.make_ucf101(tmp_path / 'manual', templates)
  for clip in (tmp_path / 'manual' / 'UCF-101' / 'Typing').iterdir():
    clip.unlink()
  with pytest.raises(FileNotFoundError, match=r'UCF-101/Typing: the folder of UCF101 class .Typing. holds no video'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_missing_list_file(tmp_path, templates):
  vf.make_ucf101(tmp_path / 'manual', templates)
  (tmp_path / 'manual' / 'ucfTrainTestlist' / 'testlist02.txt').unlink()
  with pytest.raises(FileNotFoundError, match=r'testlist02\.txt: UCF101 split list missing'):
    _build(tmp_path / 'manual', tmp_path / 'data', config='split2')


def test_train_label_that_contradicts_the_class(tmp_path, templates):
  vf.make_ucf101(tmp_path / 'manual', templates)
  path = tmp_path / 'manual' / 'ucfTrainTestlist' / 'trainlist01.txt'
  path.write_bytes(path.read_bytes().replace(b'ApplyEyeMakeup_g08_c01.avi 1\r', b'ApplyEyeMakeup_g08_c01.avi 2\r'))
  with pytest.raises(ValueError, match=r"trainlist01\.txt:1: label 2 does not match class 'ApplyEyeMakeup'"):
    _build(tmp_path / 'manual', tmp_path / 'data')
