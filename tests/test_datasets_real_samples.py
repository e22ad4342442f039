"""Conformance with real files of the public datasets (../shared/real_samples beside the checkout).

The samples are few (7 HMDB51 clips, 15 UCF101 clips, no Penn Action frames),
so each build uses the complete official split files with every other listed
clip present as an empty placeholder file, which the test's reader decodes as
one black frame (decoding thousands of real videos would take minutes). The
builder must resolve every listed name and store every clip in the split and
with the label the official files give; the real clips are decoded from their
real codecs (FMP4/DivX) and names ('(', '!', '+').
"""

import collections
import os
import pathlib
import shutil
import tempfile

import cv2
import numpy as np
import pytest
import scipy.io
import tensorflow as tf
import tensorflow_datasets as tfds

from scfa_jax.datasets import common
from scfa_jax.datasets import video_io
from scfa_jax.datasets.hmdb51 import hmdb51
from scfa_jax.datasets.penn_action import penn_action
from scfa_jax.datasets.ucf101 import ucf101
from tests import video_fixtures as vf

SAMPLES = pathlib.Path(__file__).resolve().parents[1].parent / 'shared' / 'real_samples'
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f'real samples not found at {SAMPLES} (only beside '
                                'the project checkout on developer machines and CI)')


def _decoded_frame_count(path):
  capture = cv2.VideoCapture(str(path))
  count = 0
  while capture.read()[0]:
    count += 1
  capture.release()
  return count


def _check_real_clip(example, path):
  """The stored clip holds every decoded frame, as squares of the stored size."""
  assert example['num_frames'] == len(example['frames']) == _decoded_frame_count(path)
  side = common.DEFAULT_SHORTER_SIDE
  assert tf.io.decode_jpeg(example['frames'][0]).shape == (side, side, 3)


@pytest.fixture
def placeholders_decode_as_one_frame(monkeypatch):
  real_read = video_io.read_video
  side = common.DEFAULT_SHORTER_SIDE

  def read(path, **kwargs):
    if os.path.getsize(path) == 0:
      return [np.zeros((side, side, 3), np.uint8)]
    return real_read(path, **kwargs)

  monkeypatch.setattr(video_io, 'read_video', read)


@pytest.fixture
def scratch(tmp_path):
  """A folder for thousands of placeholder files: in RAM (/dev/shm) where possible.

  Creating 13,320 files took ~9 s under /tmp on the CI-class machine and ~0.3 s in tmpfs.
  """
  if os.path.isdir('/dev/shm') and os.access('/dev/shm', os.W_OK):
    folder = pathlib.Path(tempfile.mkdtemp(prefix='scfa_real_samples_', dir='/dev/shm'))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
  else:
    yield tmp_path


def _prepare(builder, manual_dir):
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


# ----------------------------------------------------------------------------- HMDB51

HMDB_SPLITS = SAMPLES / 'hmdb51' / hmdb51.SPLITS_DIR


def test_hmdb51_official_split_files():
  classes = sorted({p.name.rsplit('_test_split', 1)[0] for p in HMDB_SPLITS.glob('*_test_split*.txt')})
  assert tuple(classes) == hmdb51.CLASS_NAMES
  for k in (1, 2, 3):
    split = hmdb51.read_split(HMDB_SPLITS, k)
    for name in hmdb51.CLASS_NAMES:
      assert collections.Counter(split[name].values()) == {'train': 70, 'test': 30}, (k, name)
    unused = sum(line.split()[1] == '0' for p in HMDB_SPLITS.glob(f'*_test_split{k}.txt')
                 for line in p.read_text().splitlines() if line.strip())
    assert (sum(len(s) for s in split.values()), unused) == (3570 + 1530, 1666)


def _link_or_placeholder(target, real_path):
  target.parent.mkdir(parents=True, exist_ok=True)
  if real_path:
    os.symlink(real_path, target)
  else:
    target.touch()


@pytest.mark.slow(seconds=8)
def test_hmdb51_real_clips(scratch, placeholders_decode_as_one_frame):
  manual = scratch / 'manual'
  manual.mkdir()
  os.symlink(HMDB_SPLITS, manual / hmdb51.SPLITS_DIR, target_is_directory=True)
  real = {p.name: p for p in (SAMPLES / 'hmdb51' / 'videos').glob('*.avi')}
  assert len(real) == 7
  expected = {'train': {}, 'test': {}}  # From the split files, parsed here independently of the builder.
  class_of = {}
  for name in hmdb51.CLASS_NAMES:
    for k in (1, 2, 3):
      for line in (HMDB_SPLITS / f'{name}_test_split{k}.txt').read_text().splitlines():
        if line.strip():
          clip, split_id = line.split()
          class_of[clip] = name
          if k == 1 and split_id != '0':
            expected['train' if split_id == '1' else 'test'][clip[:-4]] = hmdb51.CLASS_NAMES.index(name)
  assert len(class_of) == 6766 and set(real) <= set(class_of)
  for clip in sorted(set(real) | {vid + '.avi' for e in expected.values() for vid in e}):
    _link_or_placeholder(manual / 'hmdb51_org' / class_of[clip] / clip, real.get(clip))

  builder = _prepare(hmdb51.Hmdb51(data_dir=str(scratch / 'data')), manual)
  assert {split: {vid: e.label for vid, e in got.items()} for split, got in vf.summary(builder).items()} == expected
  assert (len(expected['train']), len(expected['test'])) == (3570, 1530)
  checked = 0
  for split in ('train', 'test'):
    for vid, example in vf.load_split(builder, split, [p[:-4] for p in real]).items():
      _check_real_clip(example, real[vid + '.avi'])
      checked += 1
  assert checked == sum(p[:-4] in expected['train'] or p[:-4] in expected['test'] for p in real) > 0


# ----------------------------------------------------------------------------- UCF101

UCF_LISTS = SAMPLES / 'ucf101' / ucf101.LISTS_DIR


def test_ucf101_official_lists():
  assert ucf101.read_class_index(UCF_LISTS) == ucf101.CLASS_NAMES
  everything = set()
  for k, (num_train, num_test) in {1: (9537, 3783), 2: (9586, 3734), 3: (9624, 3696)}.items():
    train = ucf101.read_list(UCF_LISTS / f'trainlist0{k}.txt')
    test = ucf101.read_list(UCF_LISTS / f'testlist0{k}.txt')
    assert (len(train), len(test)) == (num_train, num_test)
    clips = {(c, f) for _, c, f in train + test}
    assert len(clips) == 13320 and not {f for _, _, f in train} & {f for _, _, f in test}
    everything |= clips
  assert len(everything) == 13320


@pytest.mark.slow(seconds=15)
def test_ucf101_real_clips(scratch, placeholders_decode_as_one_frame):
  manual = scratch / 'manual'
  manual.mkdir()
  os.symlink(UCF_LISTS, manual / ucf101.LISTS_DIR, target_is_directory=True)
  real = {p.name: p for p in (SAMPLES / 'ucf101' / 'videos').glob('*.avi')}
  assert len(real) == 15
  class_ids = {line.split()[1]: int(line.split()[0]) - 1
               for line in (UCF_LISTS / 'classInd.txt').read_text().splitlines() if line.strip()}
  expected = {'train': {}, 'test': {}}
  for split, list_name in (('train', 'trainlist01.txt'), ('test', 'testlist01.txt')):
    for line in (UCF_LISTS / list_name).read_text().splitlines():
      if line.strip():
        class_name, file_name = line.split()[0].split('/')
        expected[split][file_name[:-4]] = class_ids[class_name]
        _link_or_placeholder(manual / ucf101.VIDEOS_DIR / class_name / file_name, real.get(file_name))

  builder = _prepare(ucf101.Ucf101Manual(data_dir=str(scratch / 'data')), manual)
  assert {split: {vid: e.label for vid, e in got.items()} for split, got in vf.summary(builder).items()} == expected
  assert (len(expected['train']), len(expected['test'])) == (9537, 3783)
  # Split 1 tests on groups 1-7: all 15 real clips (group 1) are test clips.
  examples = vf.load_split(builder, 'test', [p[:-4] for p in real])
  assert len(examples) == 15
  for file_name, path in real.items():
    _check_real_clip(examples[file_name[:-4]], path)


# ----------------------------------------------------------------------------- Penn Action

PENN_LABELS = SAMPLES / 'penn_action' / 'labels'


def _raw_label(path):
  mat = scipy.io.loadmat(path)
  return (str(mat['action'][0]), int(mat['train'][0, 0]), int(mat['nframes'][0, 0]),
          tuple(int(v) for v in mat['dimensions'][0]))


def test_penn_action_all_label_files():
  files = sorted(PENN_LABELS.glob('*.mat'))
  assert len(files) == 2326
  splits = collections.Counter()
  for path in files:
    action, split, nframes = penn_action.read_label_file(path)
    raw_action, raw_train, raw_nframes, dims = _raw_label(path)
    assert (action, nframes) == (raw_action, raw_nframes) == (raw_action, dims[2])
    assert split == {1: 'train', -1: 'test'}[raw_train]
    splits[split] += 1
  assert splits == {'train': 1258, 'test': 1068}


def test_penn_action_build_with_real_label_files(tmp_path):
  # The shortest clip of four (action, split) pairs, framed at the recorded dimensions.
  labels = {p.stem: _raw_label(p) for p in sorted(PENN_LABELS.glob('*.mat'))}
  chosen = {}
  for video_id, (action, train, nframes, _) in sorted(labels.items(), key=lambda kv: (kv[1][2], kv[0])):
    if action in ('bowl', 'pullup') and (action, train) not in chosen:
      chosen[(action, train)] = video_id
  assert len(chosen) == 4
  base = tmp_path / 'manual' / 'Penn_Action'
  expected = {}
  for video_id in chosen.values():
    action, train, nframes, (height, width, _) = labels[video_id]
    (base / 'labels').mkdir(parents=True, exist_ok=True)
    os.symlink(PENN_LABELS / f'{video_id}.mat', base / 'labels' / f'{video_id}.mat')
    vf.write_penn_frames(base / 'frames' / video_id, nframes, height, width)
    expected[video_id] = vf.Expected(penn_action.CLASS_NAMES.index(action), nframes, {1: 'train', -1: 'test'}[train])
  builder = _prepare(penn_action.PennAction(data_dir=str(tmp_path / 'data')), tmp_path / 'manual')
  assert vf.summary(builder) == vf.by_split(expected)
  for split in ('train', 'test'):
    for video_id, example in vf.load_split(builder, split).items():
      shape = tf.io.decode_jpeg(example['frames'][0]).shape
      assert shape[:2] == (common.DEFAULT_SHORTER_SIDE,) * 2
