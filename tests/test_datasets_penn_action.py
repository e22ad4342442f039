"""penn_action builder: Penn_Action.tar.gz or its folder, labels and split from the .mat files."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from scfa_jax.datasets.penn_action import penn_action
from tests import video_fixtures as vf


def _build(manual_dir, data_dir, **kwargs):
  builder = penn_action.PennAction(data_dir=str(data_dir), **kwargs)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


@pytest.mark.parametrize('archived', [False, True], ids=['extracted', 'tar_gz'])
def test_build(tmp_path, archived):
  expected = vf.make_penn_action(tmp_path / 'manual', archived=archived)
  builder = _build(tmp_path / 'manual', tmp_path / 'data')
  assert builder.info.features['label'].names == sorted(penn_action.CLASS_NAMES)
  assert vf.summary(builder) == vf.by_split(expected)
  # Frames are stored as squares of the default size: 40x30 (HxW) -> 56x56.
  serve = vf.load_split(builder, 'train')['0003']
  assert tf.io.decode_jpeg(serve['frames'][0]).shape == (56, 56, 3)


def test_frames_follow_the_jpeg_order(tmp_path):
  vf.make_penn_action(tmp_path / 'manual')
  builder = _build(tmp_path / 'manual', tmp_path / 'data', shorter_side=16)
  clip = vf.load_split(builder, 'test')['0002']  # 18 frames of grey level (13 * i) % 255.
  levels = [float(np.mean(tf.io.decode_jpeg(f).numpy())) for f in clip['frames']]
  np.testing.assert_allclose(levels, [(13 * i) % 255 for i in range(18)], atol=2)


def test_missing_labels_file(tmp_path):
  vf.make_penn_action(tmp_path / 'manual')
  (tmp_path / 'manual' / 'Penn_Action' / 'labels' / '0004.mat').unlink()
  with pytest.raises(FileNotFoundError, match=r'labels/0004\.mat: labels file missing for the frames in .*frames/0004'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_missing_frame_folder(tmp_path):
  vf.make_penn_action(tmp_path / 'manual')
  vf.shutil.rmtree(tmp_path / 'manual' / 'Penn_Action' / 'frames' / '0002')
  with pytest.raises(FileNotFoundError, match=r'frames/0002: frame folder missing for .*labels/0002\.mat'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_missing_labels_folder(tmp_path):
  vf.make_penn_action(tmp_path / 'manual')
  vf.shutil.rmtree(tmp_path / 'manual' / 'Penn_Action' / 'labels')
  with pytest.raises(FileNotFoundError, match=r'Penn_Action/labels: missing'):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_label_file_with_unknown_action(tmp_path):
  vf.make_penn_action(tmp_path / 'manual')
  vf.write_penn_label(tmp_path / 'manual' / 'Penn_Action' / 'labels' / '0005.mat', vf.PennClip('curling', 1, 6))
  with pytest.raises(ValueError, match=r"0005\.mat: unknown action 'curling'"):
    _build(tmp_path / 'manual', tmp_path / 'data')


def test_corrupt_frame_skips_the_clip_and_counts_it(tmp_path):
  vf.make_penn_action(tmp_path / 'manual')
  (tmp_path / 'manual' / 'Penn_Action' / 'frames' / '0003' / '000004.jpg').write_bytes(b'not a jpeg')
  builder = _build(tmp_path / 'manual', tmp_path / 'data', max_bad_fraction=0.5)
  assert '0003' not in vf.load_split(builder, 'train')
  assert builder.info.splits['train'].num_examples == 2
  skipped = builder.info.metadata['skipped_clips']['train']
  assert [s['video_id'] for s in skipped] == ['0003']
  assert '000004.jpg: OpenCV cannot decode this image' in skipped[0]['reason']
