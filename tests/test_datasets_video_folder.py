"""video_folder builder: class subfolders of videos, with train/test lists or the deterministic split."""

import pytest
import tensorflow_datasets as tfds

from scfa_jax.datasets.video_folder import video_folder
from tests import video_fixtures as vf

CLIPS = {  # Mixed containers, nested folders, spaces and odd characters in names.
    'jump': [('a (1).avi', 5), ('day 2/b+c.mp4', 9), ('c!.avi', 20)],
    'clap': [(f'clip_{i}.avi', 5) for i in range(10)],
    'wave': [('only.mkv', 9)],
}


@pytest.fixture(scope='module')
def templates(tmp_path_factory):
  return vf.VideoTemplates(tmp_path_factory.mktemp('templates'), (5, 9, 20))


def _build(manual_dir, data_dir, **kwargs):
  builder = video_folder.VideoFolder(data_dir=str(data_dir), **kwargs)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def _expected(split_of):
  labels = {name: i for i, name in enumerate(sorted(CLIPS))}
  return {f'{c}/{rel}': vf.Expected(labels[c], n, split_of(f'{c}/{rel}'))
          for c, clips in CLIPS.items() for rel, n in clips if split_of(f'{c}/{rel}')}


def test_lists(tmp_path, templates):
  vf.make_video_folder(tmp_path / 'manual', templates, CLIPS)
  test = {'jump/day 2/b+c.mp4', 'clap/clip_3.avi'}
  unused = {'clap/clip_9.avi'}
  train = {f'{c}/{r}' for c, clips in CLIPS.items() for r, _ in clips} - test - unused
  (tmp_path / 'manual' / 'train.txt').write_text('# my split\n' + '\n'.join(sorted(train)) + '\n\n')
  (tmp_path / 'manual' / 'test.txt').write_text('\n'.join(sorted(test)))
  builder = _build(tmp_path / 'manual', tmp_path / 'data')
  assert builder.info.features['label'].names == ['clap', 'jump', 'wave']
  expected = _expected(lambda v: 'test' if v in test else 'train' if v in train else None)
  assert vf.summary(builder) == vf.by_split(expected)


def test_label_names_survive_reloading(tmp_path, templates):
  vf.make_video_folder(tmp_path / 'manual', templates, CLIPS)
  _build(tmp_path / 'manual', tmp_path / 'data')
  reloaded = video_folder.VideoFolder(data_dir=str(tmp_path / 'data'))
  assert reloaded.is_prepared()
  assert reloaded.info.features['label'].names == ['clap', 'jump', 'wave']


def test_deterministic_split_without_lists(tmp_path, templates):
  vf.make_video_folder(tmp_path / 'manual', templates, CLIPS)
  builder = _build(tmp_path / 'manual', tmp_path / 'data')
  got = vf.summary(builder)
  test_ids = set(got['test'])
  # Per class round(0.3 * n) clips go to test: jump 1 of 3, clap 3 of 10, wave 0 of 1.
  assert sorted(v.split('/')[0] for v in test_ids) == ['clap', 'clap', 'clap', 'jump']
  assert got == vf.by_split(_expected(lambda v: 'test' if v in test_ids else 'train'))
  # The same files give the same split, whatever the folder is called.
  vf.shutil.copytree(tmp_path / 'manual', tmp_path / 'elsewhere')
  again = _build(tmp_path / 'elsewhere', tmp_path / 'data2')
  assert set(vf.load_split(again, 'test')) == test_ids


def test_list_naming_a_missing_clip(tmp_path, templates):
  vf.make_video_folder(tmp_path / 'manual', templates, CLIPS)
  (tmp_path / 'manual' / 'train.txt').write_text('jump/a (1).avi\njump/gone.avi\n')
  (tmp_path / 'manual' / 'test.txt').write_text('wave/only.mkv\n')
  with pytest.raises(FileNotFoundError, match=r"train\.txt:2: names 'jump/gone\.avi'"):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_only_one_list(tmp_path, templates):
  vf.make_video_folder(tmp_path / 'manual', templates, CLIPS)
  (tmp_path / 'manual' / 'test.txt').write_text('wave/only.mkv\n')
  with pytest.raises(FileNotFoundError, match=r'test\.txt exists but .*train\.txt.* does not'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_clip_in_both_lists(tmp_path, templates):
  vf.make_video_folder(tmp_path / 'manual', templates, CLIPS)
  (tmp_path / 'manual' / 'train.txt').write_text('wave/only.mkv\n')
  (tmp_path / 'manual' / 'test.txt').write_text('wave/only.mkv\n')
  with pytest.raises(ValueError, match=r"both list \['wave/only\.mkv'\]"):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_class_folder_without_videos(tmp_path, templates):
  vf.make_video_folder(tmp_path / 'manual', templates, CLIPS)
  (tmp_path / 'manual' / 'empty_class').mkdir()
  (tmp_path / 'manual' / 'empty_class' / 'notes.txt').write_text('no videos here')
  with pytest.raises(FileNotFoundError, match=r'empty_class: class folder without any video'):
    _build(tmp_path / 'manual', tmp_path / 'data')
