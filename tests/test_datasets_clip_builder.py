"""What every real-video builder shares: OpenCV decoding, the bad-clip policy, restarts, config and CLI."""

import logging

from absl import flags
import cv2
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from scfa_jax import config as base_config
from scfa_jax import datasets
from scfa_jax.datasets import clip_builder
from scfa_jax.datasets import manual_files
from scfa_jax.datasets import video_io
from scfa_jax.datasets.hmdb51 import hmdb51
from scfa_jax.datasets.video_folder import video_folder
from scfa_jax.tools import build_dataset
from tests import video_fixtures as vf


@pytest.fixture(scope='module')
def templates(tmp_path_factory):
  return vf.VideoTemplates(tmp_path_factory.mktemp('templates'), vf.HMDB51_LENGTHS)


# ----------------------------------------------------------------------------- video_io

def test_read_video_decodes_every_frame_in_rgb(tmp_path):
  path = tmp_path / 'red.avi'
  vf.write_video(path, 7, width=40, height=30)
  frames = video_io.read_video(path)
  assert len(frames) == 7
  assert frames[0].shape == (30, 40, 3) and frames[0].dtype == np.uint8
  small = video_io.read_video(path, shorter_side=12)
  assert [f.shape for f in small] == [(12, 16, 3)] * 7
  # The fixture draws a white bar at x = i on a coloured background; RGB order is checked on a pure-red clip.
  writer_path = tmp_path / 'pure_red.avi'
  writer = cv2.VideoWriter(str(writer_path), cv2.VideoWriter_fourcc(*'MJPG'), 25, (32, 32))
  writer.write(np.dstack([np.zeros((32, 32)), np.zeros((32, 32)), np.full((32, 32), 255)]).astype(np.uint8))  # BGR
  writer.release()
  red = video_io.read_video(writer_path)[0].mean(axis=(0, 1))
  assert red[0] > 200 and red[2] < 50


@pytest.mark.parametrize('content,message', [
    (None, 'no such file'),
    (b'', 'the file is empty'),
    (b'RIFF' + b'\0' * 400, 'cannot open it as a video'),
    ('truncated', 'cannot open it as a video'),
])
def test_read_video_errors_name_the_file(tmp_path, content, message):
  path = tmp_path / 'clip (1).avi'
  if content == 'truncated':
    data = vf.write_video(tmp_path / 'whole.avi', 20).read_bytes()
    path.write_bytes(data[:len(data) // 2])
  elif content is not None:
    path.write_bytes(content)
  with pytest.raises(video_io.VideoReadError, match=rf'clip \(1\)\.avi: .*{message}'):
    video_io.read_video(path)


def test_read_frame_files_errors(tmp_path):
  good = tmp_path / '000001.jpg'
  cv2.imwrite(str(good), np.zeros((8, 8, 3), np.uint8))
  other_size = tmp_path / '000002.jpg'
  cv2.imwrite(str(other_size), np.zeros((8, 9, 3), np.uint8))
  broken = tmp_path / '000003.jpg'
  broken.write_bytes(b'\xff\xd8 truncated')
  assert len(video_io.read_frame_files([good, good])) == 2
  with pytest.raises(video_io.VideoReadError, match=r'000002\.jpg: frame size \(8, 9\) differs'):
    video_io.read_frame_files([good, other_size])
  with pytest.raises(video_io.VideoReadError, match=r'000003\.jpg: OpenCV cannot decode'):
    video_io.read_frame_files([good, broken])


# ----------------------------------------------------------------------------- bad clips

def _folder_with_bad_clips(root, templates, num_bad):
  clips = {'a': [(f'{i}.avi', 9) for i in range(10)], 'b': [(f'{i}.avi', 5) for i in range(10)]}
  vf.make_video_folder(root, templates, clips)
  (root / 'train.txt').write_text('\n'.join(f'{c}/{i}.avi' for c in 'ab' for i in range(10)))
  (root / 'test.txt').write_text('a/test.avi\n')
  templates.copy(9, root / 'a' / 'test.avi')
  for i in range(num_bad):
    (root / 'b' / f'{i}.avi').write_bytes(b'not a video')
  return root


def _build_folder(manual_dir, data_dir, **kwargs):
  builder = video_folder.VideoFolder(data_dir=str(data_dir), **kwargs)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def test_bad_clips_are_skipped_named_and_counted(tmp_path, templates, caplog):
  caplog.set_level(logging.INFO)
  manual = _folder_with_bad_clips(tmp_path / 'manual', templates, num_bad=2)
  builder = _build_folder(manual, tmp_path / 'data', max_bad_fraction=0.1)
  assert builder.info.splits['train'].num_examples == 18
  skipped = builder.info.metadata['skipped_clips']['train']
  assert [s['video_id'] for s in skipped] == ['b/0.avi', 'b/1.avi']
  assert 'b/0.avi' in caplog.text and '2 skipped as unreadable' in caplog.text
  # The summary is stored with the dataset and survives reloading.
  reloaded = video_folder.VideoFolder(data_dir=str(tmp_path / 'data'))
  text = build_dataset.summarize(reloaded)
  assert 'train: 18 clips stored, 2 skipped as unreadable' in text
  assert f'skipped {manual / "b" / "1.avi"}: ' in text


def test_too_many_bad_clips_fail_the_build_with_the_list(tmp_path, templates):
  manual = _folder_with_bad_clips(tmp_path / 'manual', templates, num_bad=3)
  with pytest.raises(clip_builder.BadClipsError,
                     match=r'(?s)3 of 20 clips .*max_bad_fraction=0.1:.*b/0\.avi.*b/2\.avi'):
    _build_folder(manual, tmp_path / 'data', max_bad_fraction=0.1)
  assert not video_folder.VideoFolder(data_dir=str(tmp_path / 'data')).is_prepared()


def test_short_clips_are_kept_and_empty_splits_left_out(tmp_path, templates, caplog):
  vf.make_video_folder(tmp_path / 'manual', templates, {'a': [('short.avi', 5)], 'b': [('long.avi', 20)]})
  builder = _build_folder(tmp_path / 'manual', tmp_path / 'data')
  assert vf.summary(builder) == {'train': {'a/short.avi': vf.Expected(0, 5, 'train'),
                                           'b/long.avi': vf.Expected(1, 20, 'train')}}
  assert "split 'test' has no clips and is not written" in caplog.text


# ----------------------------------------------------------------------------- restarts

def _examples(builder):
  return {split: {vid: (ex['label'], ex['num_frames'], list(ex['frames'])) for vid, ex in
                  vf.load_split(builder, split).items()} for split in ('train', 'test')}


def test_interrupted_build_restarts_to_the_same_dataset(tmp_path, templates, monkeypatch):
  vf.make_hmdb51(tmp_path / 'manual', templates, layout='rar')
  download_config = tfds.download.DownloadConfig(manual_dir=str(tmp_path / 'manual'))
  clean = hmdb51.Hmdb51(data_dir=str(tmp_path / 'clean'))
  clean.download_and_prepare(download_config=download_config)

  # 1. Killed while extracting: a half-written extraction folder is left behind.
  leftover = tmp_path / 'data' / 'downloads' / 'extracted' / 'RAR.hmdb51_org.rar.incomplete'
  leftover.mkdir(parents=True)
  (leftover / 'brush_hair.rar').write_bytes(b'half')
  # 2. Interrupted while decoding, after the extraction finished.
  real_read = video_io.read_video
  calls = []

  def interrupted_read(path, **kwargs):
    calls.append(path)
    if len(calls) == 30:
      raise KeyboardInterrupt
    return real_read(path, **kwargs)

  monkeypatch.setattr(video_io, 'read_video', interrupted_read)
  with pytest.raises(KeyboardInterrupt):
    hmdb51.Hmdb51(data_dir=str(tmp_path / 'data')).download_and_prepare(download_config=download_config)
  monkeypatch.setattr(video_io, 'read_video', real_read)
  assert not leftover.exists()

  restarted = hmdb51.Hmdb51(data_dir=str(tmp_path / 'data'))
  assert not restarted.is_prepared()
  restarted.download_and_prepare(download_config=download_config)
  assert _examples(restarted) == _examples(clean)


# ----------------------------------------------------------------------------- config and CLI

def test_get_builder_uses_config_data_fields(tmp_path, templates):
  vf.make_video_folder(tmp_path / 'manual', templates, {'a': [('x.avi', 5), ('y.avi', 9)], 'b': [('z.avi', 5)]})
  data = base_config.get_config().data
  data.name = 'video_folder'
  data.manual_dir = str(tmp_path / 'manual')
  data.data_dir = str(tmp_path / 'data')
  data.shorter_side = 20
  builder = datasets.get_builder(data)
  assert builder.info.full_name == 'video_folder/default_s20/1.0.0'
  frame = next(iter(vf.load_split(builder, 'train').values()))['frames'][0]
  assert tf.io.decode_jpeg(frame).shape[:2] == (20, 20)  # stored as 20x20 squares
  # Prepared: a second call reads it without the manual folder.
  data.manual_dir = ''
  assert datasets.get_builder(data).info.splits['train'].num_examples == builder.info.splits['train'].num_examples


def test_build_dataset_cli(tmp_path, templates, capsys):
  manual = _folder_with_bad_clips(tmp_path / 'manual', templates, num_bad=1)
  argv = ['build_dataset', '--dataset=video_folder', f'--manual_dir={manual}', f'--data_dir={tmp_path / "data"}',
          '--max_bad_fraction=0.2']
  flags.FLAGS(argv)
  try:
    build_dataset.main(argv[:1])
  finally:
    flags.FLAGS.unparse_flags()
  out = capsys.readouterr().out
  assert 'video_folder/default/1.0.0 in ' in out
  assert 'train: 19 clips stored, 1 skipped as unreadable' in out
  assert 'test: 1 clips stored, 0 skipped' in out


def test_extract_rar_rejects_members_leaving_the_folder(tmp_path):
  archive = vf.write_rar4(tmp_path / 'evil.rar', {'../outside.txt': b'x'})
  with pytest.raises(ValueError, match=r"evil\.rar: refusing to extract the member '\.\./outside\.txt'"):
    manual_files.extract_rar(archive, tmp_path / 'out')
  assert not (tmp_path / 'outside.txt').exists()


def test_extract_rar_keeps_names_and_bytes(tmp_path):
  members = {'climb/(HQ)_Rock_Climbing_-_Dan_Osman!!!+_climb_f_cm_np1_le_med_2.avi': bytes(range(256)) * 3,
             'climb/second.avi': b'\x00' * 10}
  out = manual_files.extract_rar(vf.write_rar4(tmp_path / 'climb.rar', members), tmp_path / 'out')
  assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob('*') if p.is_file()} == members
  # A finished extraction is reused, not redone.
  (out / 'climb' / 'second.avi').write_bytes(b'kept')
  manual_files.extract_rar(tmp_path / 'climb.rar', tmp_path / 'out')
  assert (out / 'climb' / 'second.avi').read_bytes() == b'kept'


def test_opencv_without_ffmpeg_fails_loudly_instead_of_skipping(tmp_path, monkeypatch):
  path = vf.write_video(tmp_path / 'fine.avi', 3)
  monkeypatch.setattr(cv2.videoio_registry, 'hasBackend', lambda backend: False)
  with pytest.raises(RuntimeError, match='no FFmpeg video backend.*pip install opencv-python-headless'):
    video_io.read_video(path)
