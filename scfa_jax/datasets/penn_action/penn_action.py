"""penn_action: Penn Action (Zhang et al., ICCV 2013) from Penn_Action.tar.gz or its folder.

2,326 clips of 15 sports actions, shipped as frames:
``Penn_Action/frames/NNNN/NNNNNN.jpg`` with one MATLAB v5 file per clip,
``Penn_Action/labels/NNNN.mat``, whose ``action`` names the class and whose
``train`` flag is the official split (1 = train: 1,258 clips, -1 = test:
1,068). Label ids are the action names in sorted order; frames are read from
the JPEGs (their count is checked against ``nframes``).
"""

from __future__ import annotations

import pathlib

import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from scfa_jax import errors
from scfa_jax.datasets import clip_builder
from scfa_jax.datasets import manual_files

CLASS_NAMES = (
    'baseball_pitch', 'baseball_swing', 'bench_press', 'bowl', 'clean_and_jerk', 'golf_swing', 'jump_rope',
    'jumping_jacks', 'pullup', 'pushup', 'situp', 'squat', 'strum_guitar', 'tennis_forehand', 'tennis_serve',
)
DATASET_DIR = 'Penn_Action'
ARCHIVE = 'Penn_Action.tar.gz'
TRAIN_FLAGS = {1: 'train', -1: 'test'}

_HOMEPAGE = 'http://dreamdragon.github.io/PennAction/'
_CITATION = """\
@inproceedings{zhang2013actemes,
  title={From Actemes to Action: A Strongly-supervised Representation for Detailed Action Understanding},
  author={Zhang, Weiyu and Zhu, Menglong and Derpanis, Konstantinos G.},
  booktitle={ICCV},
  year={2013}
}
"""
MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download {ARCHIVE} (about 3 GB) from {_HOMEPAGE} and put it in the manual
folder as it is, or what it extracts to: the folder {DATASET_DIR}/ holding
frames/NNNN/*.jpg and labels/NNNN.mat.
"""


def read_label_file(path: pathlib.Path) -> tuple[str, str, int]:
  """Reads one clip's annotation.

  Args:
    path: A ``labels/NNNN.mat`` file.

  Returns:
    (action, 'train' | 'test', nframes).

  Raises:
    ValueError: the file cannot be read, lacks a field, or holds an unknown action or train flag.
  """
  try:
    mat = scipy.io.loadmat(path, squeeze_me=True, variable_names=('action', 'train', 'nframes'))
  except Exception as e:  # scipy raises several types for truncated or foreign files.
    raise errors.BadFilesError(f'{path}: not a readable MATLAB label file ({e!r}); re-extract {ARCHIVE}.') from e
  missing = [k for k in ('action', 'train', 'nframes') if k not in mat]
  if missing:
    raise errors.BadFilesError(f'{path}: Penn Action label file lacks the field(s) {missing}.')
  action = str(mat['action'])
  if action not in CLASS_NAMES:
    raise errors.BadFilesError(f'{path}: unknown action {action!r}; expected one of {CLASS_NAMES}.')
  train = int(np.asarray(mat['train']).astype(np.int64))  # Stored as a small MATLAB integer type.
  if train not in TRAIN_FLAGS:
    raise errors.BadFilesError(f'{path}: train flag is {train}; expected 1 (train) or -1 (test).')
  return action, TRAIN_FLAGS[train], int(np.asarray(mat['nframes']).astype(np.int64))


def find_dataset_dir(dl_manager: tfds.download.DownloadManager, root: pathlib.Path) -> pathlib.Path:
  """The folder holding frames/ and labels/: given extracted, else extracted from the archive."""
  for candidate in manual_files.search_roots(root):
    for folder in (candidate / DATASET_DIR, candidate):
      if (folder / 'frames').is_dir() or (folder / 'labels').is_dir():
        return folder
  return manual_files.find_or_extract(dl_manager, root, DATASET_DIR, ARCHIVE, MANUAL_DOWNLOAD_INSTRUCTIONS)


class PennAction(clip_builder.ClipBuilder):
  """Penn Action from Penn_Action.tar.gz or its extracted folder."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [clip_builder.ClipBuilderConfig(name='default', description='Official train/test flag.')]
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    return self._clip_info(class_names=CLASS_NAMES, description=__doc__, homepage=_HOMEPAGE, citation=_CITATION)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = manual_files.manual_dir(dl_manager, self.name, MANUAL_DOWNLOAD_INSTRUCTIONS)
    dataset_dir = find_dataset_dir(dl_manager, root)
    frames_dir, labels_dir = dataset_dir / 'frames', dataset_dir / 'labels'
    for folder in (frames_dir, labels_dir):
      if not folder.is_dir():
        raise errors.MissingFilesError(
            f'{folder}: missing; {dataset_dir} must hold frames/ and labels/ as in {ARCHIVE}.')
    label_files = {p.stem: p for p in labels_dir.glob('*.mat')}
    frame_dirs = {p.name: p for p in frames_dir.iterdir() if p.is_dir()}
    for video_id in sorted(set(frame_dirs) - set(label_files)):
      raise errors.MissingFilesError(f'{labels_dir / (video_id + ".mat")}: labels file missing for the frames in '
                                     f'{frame_dirs[video_id]}; re-extract {ARCHIVE}.')
    for video_id in sorted(set(label_files) - set(frame_dirs)):
      raise errors.MissingFilesError(f'{frames_dir / video_id}: frame folder missing for {label_files[video_id]}; '
                                     f're-extract {ARCHIVE}.')
    if not label_files:
      raise errors.MissingFilesError(f'{labels_dir}: holds no .mat label file; re-extract {ARCHIVE}.')
    clips = {'train': [], 'test': []}
    for video_id in sorted(label_files):
      action, split, nframes = read_label_file(label_files[video_id])
      clips[split].append(clip_builder.Clip(video_id=video_id, label=CLASS_NAMES.index(action),
                                            path=frame_dirs[video_id], expected_frames=nframes))
    return self._split_generators_for(clips)
