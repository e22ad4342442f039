"""Makers of tiny datasets in the real on-disk layouts, for builder tests.

Each maker writes what a user would have after downloading (and, optionally,
extracting): AVI files written with OpenCV in the real codec (FMP4 = MPEG-4
part 2, as in HMDB51 and UCF101), split lists in their real formats, Penn
Action JPEG folders and MATLAB label files with the real field names and types.
Each returns what the builder must produce, for the test to compare with.

RAR archives: no free tool can create them, so ``write_rar4`` writes RAR 4.x
archives (the version of hmdb51_org.rar and UCF101.rar) with the "store"
method by hand; the builders read them through libarchive like real ones.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import struct
import tarfile
import zipfile
import zlib
from typing import Iterable

import cv2
import numpy as np
import scipy.io
import tensorflow as tf
import tensorflow_datasets as tfds

from scfa_jax.datasets.hmdb51 import hmdb51
from scfa_jax.datasets.penn_action import penn_action
from scfa_jax.datasets.ucf101 import ucf101


@dataclasses.dataclass(frozen=True)
class Expected:
  """What one stored example must look like."""

  label: int
  num_frames: int
  split: str


def write_video(path: pathlib.Path, num_frames: int, *, width: int = 40, height: int = 30, seed: int = 0,
                fourcc: str = 'FMP4', fps: float = 30.0) -> pathlib.Path:
  """Writes an AVI of ``num_frames`` distinct frames with OpenCV; returns ``path``."""
  path.parent.mkdir(parents=True, exist_ok=True)
  writer = cv2.VideoWriter(os.fspath(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
  if not writer.isOpened():
    raise RuntimeError(f'OpenCV cannot write {fourcc} video to {path}.')
  rng = np.random.default_rng(seed)
  for i in range(num_frames):
    frame = np.full((height, width, 3), rng.integers(0, 255, size=3), np.uint8)
    cv2.rectangle(frame, (i % width, 0), (i % width + 4, height // 2), (255, 255, 255), -1)
    writer.write(frame)
  writer.release()
  return path


class VideoTemplates:
  """A few written clips of given lengths, copied wherever a fixture needs a clip (writing is slower)."""

  def __init__(self, folder: pathlib.Path, lengths: Iterable[int], suffix: str = '.avi', **video_kwargs):
    self.paths = {n: write_video(folder / f'template_{n}{suffix}', n, seed=n, **video_kwargs) for n in lengths}

  def copy(self, num_frames: int, dest: pathlib.Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(self.paths[num_frames], dest)


def _rar_block(head_type: int, flags: int, body: bytes) -> bytes:
  rest = struct.pack('<BHH', head_type, flags, 7 + len(body)) + body
  return struct.pack('<H', zlib.crc32(rest) & 0xFFFF) + rest


def write_rar4(path: pathlib.Path, members: dict[str, bytes]) -> pathlib.Path:
  """Writes a RAR 4.x archive storing ``members`` (archive path -> bytes) uncompressed.

  Follows RarLab's technote for RAR 2.9-4.x: marker block, archive header, one
  file header (type 0x74, method 0x30 = store, host OS Unix) per member, end block.
  """
  dos_time = (2010 - 1980) << 25 | 1 << 21 | 1 << 16  # 2010-01-01 00:00
  out = [b'Rar!\x1a\x07\x00', _rar_block(0x73, 0, struct.pack('<HI', 0, 0))]
  for name, data in members.items():
    encoded = name.encode('utf-8')
    header = struct.pack('<IIBIIBBHI', len(data), len(data), 3, zlib.crc32(data), dos_time, 20, 0x30,
                         len(encoded), 0o100644) + encoded
    out += [_rar_block(0x74, 0x8000, header), data]
  out.append(_rar_block(0x7B, 0x4000, b''))
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(b''.join(out))
  return path


def _folder_members(folder: pathlib.Path, prefix: str) -> dict[str, bytes]:
  return {f'{prefix}/{p.relative_to(folder).as_posix()}': p.read_bytes()
          for p in sorted(folder.rglob('*')) if p.is_file()}


# ----------------------------------------------------------------------------- HMDB51

# Clip i of every class gets this id in split k (1 = train, 2 = test, 0 = unused): each split differs.
HMDB51_IDS = {1: (1, 2, 0), 2: (0, 1, 2), 3: (2, 0, 1)}
HMDB51_LENGTHS = (5, 9, 20)  # Frames of clip i; 5 and 9 are shorter than a 16-frame view.


def hmdb51_clip_name(class_name: str, index: int) -> str:
  """A clip file name with the characters real ones contain ('(', ')', '!', '+')."""
  return f'Tips_(HQ)_300+_Yards!!!_{class_name}_f_nm_np1_fr_med_{index}.avi'


HMDB51_LAYOUTS = ('extracted', 'rar', 'inner_rars')


def make_hmdb51(root: pathlib.Path, templates: VideoTemplates, *, layout: str = 'extracted',
                classes: Iterable[str] = hmdb51.CLASS_NAMES) -> dict[int, dict[str, Expected]]:
  """Writes HMDB51 with 3 clips per class and all three split files per class.

  Args:
    root: The manual folder to fill.
    templates: Clips of ``HMDB51_LENGTHS`` frames.
    layout: 'extracted': hmdb51_org/<class>/*.avi and testTrainMulti_7030_splits/;
      'rar': hmdb51_org.rar (of one <class>.rar per class) and
      test_train_splits.rar, as downloaded; 'inner_rars': the 51 <class>.rar
      of an unpacked hmdb51_org.rar, and test_train_splits.rar.
    classes: Classes to write (fewer than 51 only for error tests).

  Returns:
    split number -> {video_id -> Expected}, clips marked 0 left out.
  """
  if layout not in HMDB51_LAYOUTS:
    raise ValueError(f'layout must be one of {HMDB51_LAYOUTS}, got {layout!r}.')
  archived = layout != 'extracted'
  staging = root / ('_staging' if archived else 'hmdb51_org')
  splits_dir = staging / hmdb51.SPLITS_DIR if archived else root / hmdb51.SPLITS_DIR
  splits_dir.mkdir(parents=True, exist_ok=True)
  expected = {k: {} for k in HMDB51_IDS}
  for name in classes:
    label = hmdb51.CLASS_NAMES.index(name)
    for index, length in enumerate(HMDB51_LENGTHS):
      clip = hmdb51_clip_name(name, index)
      templates.copy(length, staging / name / clip)
      for k, ids in HMDB51_IDS.items():
        if ids[index]:
          expected[k][pathlib.Path(clip).stem] = Expected(label, length, hmdb51.SPLIT_IDS[ids[index]])
    for k, ids in HMDB51_IDS.items():
      lines = ''.join(f'{hmdb51_clip_name(name, i)} {ids[i]} \n' for i in range(len(HMDB51_LENGTHS)))
      (splits_dir / f'{name}_test_split{k}.txt').write_text(lines)
  if archived:
    inner_dir = staging if layout == 'rar' else root
    inner = {name: write_rar4(inner_dir / f'{name}.rar', _folder_members(staging / name, name)) for name in classes}
    if layout == 'rar':
      write_rar4(root / hmdb51.VIDEOS_RAR, {p.name: p.read_bytes() for p in inner.values()})
    write_rar4(root / hmdb51.SPLITS_RAR, _folder_members(splits_dir, hmdb51.SPLITS_DIR))
    shutil.rmtree(staging)
  return expected


# ----------------------------------------------------------------------------- UCF101

# Groups of the three clips per class; the official split k tests on groups 7k-6 .. 7k.
UCF101_GROUPS = (1, 8, 15)
UCF101_LENGTHS = {1: 9, 8: 20, 15: 5}


def make_ucf101(root: pathlib.Path, templates: VideoTemplates, *,
                archived: bool = False) -> dict[int, dict[str, Expected]]:
  """Writes UCF-101/<Class>/v_<Class>_gGG_c01.avi for three groups per class and the official list files.

  Lists use CRLF line ends and the train lists carry the 1-based label, as the
  real ones do. ``archived`` writes UCF101.rar and the split zip instead.
  """
  videos = root / '_staging' / ucf101.VIDEOS_DIR if archived else root / ucf101.VIDEOS_DIR
  lists = root / '_staging' / ucf101.LISTS_DIR if archived else root / ucf101.LISTS_DIR
  lists.mkdir(parents=True, exist_ok=True)
  expected = {k: {} for k in (1, 2, 3)}
  train_lines = {k: [] for k in (1, 2, 3)}
  test_lines = {k: [] for k in (1, 2, 3)}
  for label, name in enumerate(ucf101.CLASS_NAMES):
    for group in UCF101_GROUPS:
      stem = f'v_{name}_g{group:02d}_c01'
      templates.copy(UCF101_LENGTHS[group], videos / name / f'{stem}.avi')
      for k in (1, 2, 3):
        is_test = 7 * k - 6 <= group <= 7 * k
        (test_lines if is_test else train_lines)[k].append(
            f'{name}/{stem}.avi' if is_test else f'{name}/{stem}.avi {label + 1}')
        expected[k][stem] = Expected(label, UCF101_LENGTHS[group], 'test' if is_test else 'train')
  (lists / 'classInd.txt').write_bytes(
      ''.join(f'{i + 1} {n}\r\n' for i, n in enumerate(ucf101.CLASS_NAMES)).encode())
  for k in (1, 2, 3):
    (lists / f'trainlist0{k}.txt').write_bytes(''.join(f'{line}\r\n' for line in train_lines[k]).encode())
    (lists / f'testlist0{k}.txt').write_bytes(''.join(f'{line}\r\n' for line in test_lines[k]).encode())
  if archived:
    write_rar4(root / ucf101.VIDEOS_RAR, _folder_members(videos, ucf101.VIDEOS_DIR))
    with zipfile.ZipFile(root / ucf101.LISTS_ZIP, 'w') as zf:
      for member, data in _folder_members(lists, ucf101.LISTS_DIR).items():
        zf.writestr(member, data)
    shutil.rmtree(root / '_staging')
  return expected


# ----------------------------------------------------------------------------- Penn Action

@dataclasses.dataclass(frozen=True)
class PennClip:
  action: str
  train: int  # 1 or -1, as in the label files.
  nframes: int
  height: int = 36
  width: int = 48


def write_penn_label(path: pathlib.Path, clip: PennClip) -> None:
  """A labels/NNNN.mat with the real fields and MATLAB types (nframes uint8 below 256, as real ones)."""
  n = clip.nframes
  rng = np.random.default_rng(n)
  path.parent.mkdir(parents=True, exist_ok=True)
  scipy.io.savemat(path, {
      'action': clip.action,
      'pose': 'front',
      'x': rng.uniform(0, clip.width, (n, 13)),
      'y': rng.uniform(0, clip.height, (n, 13)),
      'visibility': np.ones((n, 13), np.uint8),
      'train': np.array([[clip.train]], np.int32),
      'bbox': np.tile(np.array([[1.0, 1.0, clip.width - 1.0, clip.height - 1.0]]), (n, 1)),
      'dimensions': np.array([[clip.height, clip.width, n]], np.uint16),
      'nframes': np.array([[n]], np.uint8 if n < 256 else np.uint16),
  })


def write_penn_frames(folder: pathlib.Path, num_frames: int, height: int, width: int) -> None:
  """Penn Action frames: NNNNNN.jpg, 1-based."""
  folder.mkdir(parents=True, exist_ok=True)
  for i in range(num_frames):
    frame = np.full((height, width, 3), (i * 13) % 255, np.uint8)
    cv2.imwrite(os.fspath(folder / f'{i + 1:06d}.jpg'), frame)


PENN_CLIPS = (
    PennClip('baseball_pitch', 1, 5),
    PennClip('baseball_pitch', -1, 18),
    PennClip('tennis_serve', 1, 9, height=40, width=30),
    PennClip('bowl', -1, 7),
    PennClip('jump_rope', 1, 6),
)


def make_penn_action(root: pathlib.Path, clips: Iterable[PennClip] = PENN_CLIPS, *,
                     archived: bool = False) -> dict[str, Expected]:
  """Writes Penn_Action/frames/NNNN/ and Penn_Action/labels/NNNN.mat (or Penn_Action.tar.gz of them)."""
  base = (root / '_staging' if archived else root) / penn_action.DATASET_DIR
  expected = {}
  for index, clip in enumerate(clips, 1):
    video_id = f'{index:04d}'
    write_penn_frames(base / 'frames' / video_id, clip.nframes, clip.height, clip.width)
    write_penn_label(base / 'labels' / f'{video_id}.mat', clip)
    expected[video_id] = Expected(penn_action.CLASS_NAMES.index(clip.action), clip.nframes,
                                  penn_action.TRAIN_FLAGS[clip.train])
  if archived:
    with tarfile.open(root / penn_action.ARCHIVE, 'w:gz') as tar:
      tar.add(base, arcname=penn_action.DATASET_DIR)
    shutil.rmtree(root / '_staging')
  return expected


# ----------------------------------------------------------------------------- video_folder

def make_video_folder(root: pathlib.Path, templates: VideoTemplates, clips: dict[str, list[tuple[str, int]]]) -> None:
  """Writes <class>/<relative clip path> for clips = {class: [(relative path, frames)]}."""
  for class_name, class_clips in clips.items():
    for relative, length in class_clips:
      templates.copy(length, root / class_name / relative)


# ----------------------------------------------------------------------------- Kinetics

@dataclasses.dataclass(frozen=True)
class KineticsRow:
  label: str
  youtube_id: str
  start: int
  frames: int  # 0 = listed in the CSV but not downloaded.
  split: str  # 'train' | 'validate' | 'test'


KINETICS_ROWS = (  # Class names with spaces and parentheses, as real ones; one clip of each split missing.
    KineticsRow('abseiling', '--07WQ2iBlw', 1, 5, 'train'),
    KineticsRow('abseiling', 'a-b_c', 14, 9, 'train'),
    KineticsRow('air drumming', 'Zx9_-1', 100, 20, 'train'),
    KineticsRow('air drumming', 'gone1', 3, 0, 'train'),
    KineticsRow('passing American football (in game)', 'pq', 0, 9, 'train'),
    KineticsRow('abseiling', 'v1', 7, 9, 'validate'),
    KineticsRow('passing American football (in game)', 'v2', 22, 5, 'validate'),
    KineticsRow('air drumming', 'v3', 2, 0, 'validate'),
    KineticsRow('air drumming', 'v4', 9, 20, 'validate'),
    KineticsRow('abseiling', 't1', 5, 5, 'test'),
)
KINETICS_LAYOUTS = ('per_class', 'flat')


def kinetics_name(row: KineticsRow) -> str:
  return f'{row.youtube_id}_{row.start:06d}_{row.start + 10:06d}'


def make_kinetics(root: pathlib.Path, templates: VideoTemplates, *, layout: str = 'per_class',
                  rows: Iterable[KineticsRow] = KINETICS_ROWS, test_labels: bool = False) -> dict[str, Expected]:
  """Writes kinetics400/{train,validate,test}.csv (the official K400 header) and the downloaded .mp4 clips.

  ``layout``: 'per_class' puts clips in videos/<split>/<label>/ (as the download
  scripts do), 'flat' all in videos/. Returns the stored clips' Expected (test
  only with ``test_labels``).
  """
  rows = list(rows)
  classes = sorted({r.label for r in rows})
  expected = {}
  for split in ('train', 'validate', 'test'):
    labelled = split != 'test' or test_labels
    header = 'label,youtube_id,time_start,time_end,split,is_cc' if labelled else 'youtube_id,time_start,time_end,split'
    lines = [header]
    for r in (r for r in rows if r.split == split):
      fields = [r.youtube_id, str(r.start), str(r.start + 10), split] + (['0'] if labelled else [])
      lines.append(','.join(([f'"{r.label}"'] if labelled else []) + fields))
      if r.frames:
        folder = root / 'videos' / (f'{split}/{r.label}' if layout == 'per_class' else '')
        templates.copy(r.frames, folder / f'{kinetics_name(r)}.mp4')
        if labelled:
          expected[kinetics_name(r)] = Expected(classes.index(r.label), r.frames,
                                                'validation' if split == 'validate' else split)
    (root / 'kinetics400').mkdir(parents=True, exist_ok=True)
    (root / 'kinetics400' / f'{split}.csv').write_text('\n'.join(lines) + '\n')
  return expected


# ----------------------------------------------------------------------------- Something-Something v2

SSV2_CLASSES = ('Moving something from left to right', 'Moving something from right to left',
                'Putting something into something')
SSV2_ENTRIES = {  # split -> (id, class index, frames); test has no labels.
    'train': (('78687', 0, 9), ('42326', 1, 5), ('3', 2, 20), ('100', 1, 9)),
    'validation': (('74225', 0, 5), ('5', 2, 9)),
    'test': (('1420', None, 5),),
}


def _ssv2_template(class_name: str) -> str:
  return class_name.replace('something', '[something]')


def make_ssv2(root: pathlib.Path, templates: VideoTemplates) -> dict[str, Expected]:
  """Writes the labels JSONs (labels/) and 20bn-something-something-v2/<id>.webm as extracted."""
  import json  # pylint: disable=g-import-not-at-top
  labels = root / 'labels'
  labels.mkdir(parents=True, exist_ok=True)
  (labels / 'something-something-v2-labels.json').write_text(
      json.dumps({name: str(i) for i, name in enumerate(SSV2_CLASSES)}, indent=1))
  expected = {}
  for split, entries in SSV2_ENTRIES.items():
    listing = []
    for video_id, label, frames in entries:
      templates.copy(frames, root / '20bn-something-something-v2' / f'{video_id}.webm')
      if label is None:
        listing.append({'id': video_id})
        continue
      listing.append({'id': video_id, 'label': SSV2_CLASSES[label].replace('something', 'a cup'),
                      'template': _ssv2_template(SSV2_CLASSES[label]), 'placeholders': ['a cup']})
      expected[video_id] = Expected(label, frames, split)
    (labels / f'something-something-v2-{split}.json').write_text(json.dumps(listing))
  return expected


# ----------------------------------------------------------------------------- reading back

def load_split(builder: tfds.core.DatasetBuilder, split: str,
               video_ids: Iterable[str] | None = None) -> dict[str, dict]:
  """video_id -> example (numpy) of a prepared split, or of the given ``video_ids`` only."""
  ds = builder.as_dataset(split=split, shuffle_files=False)
  if video_ids is not None:
    wanted = tf.constant(sorted(video_ids), tf.string)
    ds = ds.filter(lambda ex: tf.reduce_any(tf.equal(ex['video_id'], wanted)))
  return {ex['video_id'].decode(): ex for ex in tfds.as_numpy(ds)}


def summary(builder: tfds.core.DatasetBuilder) -> dict[str, dict[str, Expected]]:
  """What a prepared dataset holds, in the fixtures' terms: split -> {video_id: Expected}."""
  out = {}
  for split in builder.info.splits:
    ds = builder.as_dataset(split=split, shuffle_files=False, decoders={'frames': tfds.decode.SkipDecoding()})
    ds = ds.map(lambda ex: (ex['video_id'], ex['label'], ex['num_frames'])).batch(4096)
    out[split] = {vid.decode(): Expected(int(label), int(n), split)
                  for ids, labels, counts in tfds.as_numpy(ds) for vid, label, n in zip(ids, labels, counts)}
  return out


def by_split(expected: dict[str, Expected]) -> dict[str, dict[str, Expected]]:
  """Regroups {video_id: Expected} as split -> {video_id: Expected}."""
  out = {}
  for video_id, e in expected.items():
    out.setdefault(e.split, {})[video_id] = e
  return out
