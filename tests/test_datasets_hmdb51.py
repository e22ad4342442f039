"""hmdb51 builder: the real layouts (extracted folders, or the .rar files as downloaded) built end to end."""

import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from scfa_jax.datasets.hmdb51 import hmdb51
from tests import video_fixtures as vf


@pytest.fixture(scope='module')
def templates(tmp_path_factory):
  return vf.VideoTemplates(tmp_path_factory.mktemp('templates'), vf.HMDB51_LENGTHS)


def _build(manual_dir, data_dir, config='split1', **kwargs):
  builder = hmdb51.Hmdb51(data_dir=str(data_dir), config=config, **kwargs)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def test_extracted_folders_all_splits(tmp_path, templates):
  expected = vf.make_hmdb51(tmp_path / 'manual', templates)
  for k in (1, 2, 3):
    builder = _build(tmp_path / 'manual', tmp_path / 'data', config=f'split{k}')
    assert builder.info.features['label'].names == sorted(hmdb51.CLASS_NAMES)
    assert vf.summary(builder) == vf.by_split(expected[k])
    # 51 classes x one train, one test clip; the clip marked 0 is left out.
    assert builder.info.splits['train'].num_examples == 51
    assert builder.info.splits['test'].num_examples == 51
    assert builder.info.metadata['skipped_clips'] == {'train': [], 'test': []}


def test_stored_frames_are_small_jpegs(tmp_path, templates):
  vf.make_hmdb51(tmp_path / 'manual', templates)
  builder = _build(tmp_path / 'manual', tmp_path / 'data', shorter_side=24)
  assert builder.info.config_name == 'split1_s24'
  example = next(iter(vf.load_split(builder, 'train').values()))
  assert len(example['frames']) == example['num_frames']
  frame = tf.io.decode_jpeg(example['frames'][0]).numpy()
  assert frame.shape == (24, 24, 3)  # 40x30 template stored as a 24x24 square.
  assert frame.dtype == np.uint8


def test_inner_rars_of_an_unpacked_hmdb51_org_rar(tmp_path, templates):
  expected = vf.make_hmdb51(tmp_path / 'manual', templates, layout='inner_rars')
  assert len(list((tmp_path / 'manual').glob('*.rar'))) == 52
  builder = _build(tmp_path / 'manual', tmp_path / 'data', config='split3')
  assert vf.summary(builder) == vf.by_split(expected[3])


def test_rar_archives_as_downloaded(tmp_path, templates):
  expected = vf.make_hmdb51(tmp_path / 'manual', templates, layout='rar')
  assert sorted(p.name for p in (tmp_path / 'manual').iterdir()) == ['hmdb51_org.rar', 'test_train_splits.rar']
  builder = _build(tmp_path / 'manual', tmp_path / 'data', config='split2')
  assert vf.summary(builder) == vf.by_split(expected[2])
  # Extracted once under the download folder, each archive into its own completed folder.
  extracted = tmp_path / 'data' / 'downloads' / 'extracted'
  assert (extracted / 'RAR.hmdb51_org.rar' / 'brush_hair.rar').is_file()
  assert (extracted / 'RAR.brush_hair.rar' / 'brush_hair' / vf.hmdb51_clip_name('brush_hair', 0)).is_file()
  assert not list(extracted.glob('*.incomplete'))


def test_missing_rar_backend_names_what_to_install(tmp_path, templates, monkeypatch):
  vf.make_hmdb51(tmp_path / 'manual', templates, layout='rar')
  monkeypatch.setitem(sys.modules, 'libarchive', None)  # `import libarchive` now fails as if not installed.
  with pytest.raises(RuntimeError, match=r'pip install libarchive-c.*apt-get install libarchive13.*unar'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_corrupt_rar_is_named(tmp_path, templates):
  vf.make_hmdb51(tmp_path / 'manual', templates, layout='rar')
  archive = tmp_path / 'manual' / 'hmdb51_org.rar'
  archive.write_bytes(archive.read_bytes()[:5000])  # An interrupted download.
  with pytest.raises(ValueError, match=r'hmdb51_org\.rar: cannot be extracted'):
    _build(tmp_path / 'manual', tmp_path / 'data')
  assert not list((tmp_path / 'data' / 'downloads' / 'extracted').glob('*.incomplete'))


def test_split_file_naming_a_missing_clip(tmp_path, templates):
  vf.make_hmdb51(tmp_path / 'manual', templates)
  (tmp_path / 'manual' / 'hmdb51_org' / 'golf' / vf.hmdb51_clip_name('golf', 0)).unlink()
  with pytest.raises(FileNotFoundError, match=r'golf_test_split1\.txt names Tips_\(HQ\).*golf.*does not exist'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_missing_split_file(tmp_path, templates):
  vf.make_hmdb51(tmp_path / 'manual', templates)
  (tmp_path / 'manual' / hmdb51.SPLITS_DIR / 'wave_test_split1.txt').unlink()
  with pytest.raises(FileNotFoundError, match=r'wave_test_split1\.txt: HMDB51 split file missing'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_malformed_split_line(tmp_path, templates):
  vf.make_hmdb51(tmp_path / 'manual', templates)
  with open(tmp_path / 'manual' / hmdb51.SPLITS_DIR / 'hug_test_split1.txt', 'a') as f:
    f.write('extra_clip.avi 7 \n')
  with pytest.raises(ValueError, match=r'hug_test_split1\.txt:4: expected'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_class_folder_without_videos(tmp_path, templates):
  vf.make_hmdb51(tmp_path / 'manual', templates)
  for clip in (tmp_path / 'manual' / 'hmdb51_org' / 'smile').iterdir():
    clip.unlink()
  with pytest.raises(FileNotFoundError, match=r'hmdb51_org/smile: the folder of HMDB51 class .smile. holds no video'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_missing_class_folder(tmp_path, templates):
  vf.make_hmdb51(tmp_path / 'manual', templates, classes=hmdb51.CLASS_NAMES[:-1])
  for k in (1, 2, 3):  # Split files of the missing class are there; its videos are not.
    (tmp_path / 'manual' / hmdb51.SPLITS_DIR / f'wave_test_split{k}.txt').write_text('a_wave_clip.avi 1 \n')
  with pytest.raises(FileNotFoundError, match=r'no videos for 1 HMDB51 classes \(wave'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_no_manual_dir_says_what_to_download(tmp_path):
  builder = hmdb51.Hmdb51(data_dir=str(tmp_path / 'data'))
  with pytest.raises(FileNotFoundError, match=r'(?s)none to read.*manual_dir.*hmdb51_org\.rar'):
    builder.download_and_prepare()
