"""hmdb51: HMDB51 (Kuehne et al., ICCV 2011) from the files as downloaded, with the official splits.

6,766 clips of 51 actions. Each of the three official splits
(``testTrainMulti_7030_splits/<class>_test_split<k>.txt``, one line
``<clip>.avi <id>`` per clip) marks 70 clips per class 1 = train and 30
2 = test; clips marked 0 are not part of that split and are not stored. Label
ids are the class names in sorted order. One builder config per split
(``split1`` is the default), each a complete dataset with 'train' and 'test'.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import tensorflow_datasets as tfds

from scfa_jax import errors
from scfa_jax.datasets import clip_builder
from scfa_jax.datasets import manual_files
from scfa_jax.datasets import video_io

CLASS_NAMES = (
    'brush_hair', 'cartwheel', 'catch', 'chew', 'clap', 'climb', 'climb_stairs', 'dive', 'draw_sword',
    'dribble', 'drink', 'eat', 'fall_floor', 'fencing', 'flic_flac', 'golf', 'handstand', 'hit', 'hug',
    'jump', 'kick', 'kick_ball', 'kiss', 'laugh', 'pick', 'pour', 'pullup', 'punch', 'push', 'pushup',
    'ride_bike', 'ride_horse', 'run', 'shake_hands', 'shoot_ball', 'shoot_bow', 'shoot_gun', 'sit', 'situp',
    'smile', 'smoke', 'somersault', 'stand', 'swing_baseball', 'sword', 'sword_exercise', 'talk', 'throw',
    'turn', 'walk', 'wave',
)
SPLITS_DIR = 'testTrainMulti_7030_splits'
SPLITS_RAR = 'test_train_splits.rar'
VIDEOS_RAR = 'hmdb51_org.rar'
SPLIT_IDS = {1: 'train', 2: 'test'}  # 0 = not used by this split.

_HOMEPAGE = 'https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/'
_CITATION = """\
@inproceedings{kuehne2011hmdb,
  title={{HMDB}: a large video database for human motion recognition},
  author={Kuehne, H. and Jhuang, H. and Garrote, E. and Poggio, T. and Serre, T.},
  booktitle={ICCV},
  year={2011}
}
"""
MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download from {_HOMEPAGE}:
  hmdb51_org.rar (videos, 2.1 GB) and test_train_splits.rar (the three splits).
Put both in the manual folder as they are; they are extracted at build time.
Or put there what they extract to: the 51 class folders <class>/ of .avi files
(from hmdb51_org.rar and the 51 .rar files inside it; directly or in one
subfolder, e.g. hmdb51_org/brush_hair/*.avi) and the folder {SPLITS_DIR}/.
"""


@dataclasses.dataclass
class Hmdb51Config(clip_builder.ClipBuilderConfig):
  """One official split."""

  split_number: int = 1


def read_split(splits_dir: pathlib.Path, split_number: int) -> dict[str, dict[str, str]]:
  """Reads one official split for every class.

  Args:
    splits_dir: The ``testTrainMulti_7030_splits`` folder.
    split_number: 1, 2 or 3.

  Returns:
    class name -> {clip file name -> 'train' | 'test'}; clips marked 0 are left out.

  Raises:
    FileNotFoundError: a class's split file is missing.
    ValueError: a malformed line, or a clip listed twice.
  """
  split: dict[str, dict[str, str]] = {}
  listed_in: dict[str, pathlib.Path] = {}
  for name in CLASS_NAMES:
    path = splits_dir / f'{name}_test_split{split_number}.txt'
    if not path.is_file():
      raise errors.MissingFilesError(f'{path}: HMDB51 split file missing (class {name!r}, split {split_number}). '
                                     f'{splits_dir} must hold all 153 files of {SPLITS_RAR}.')
    clips = split[name] = {}
    for line_number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
      tokens = line.split()
      if not tokens:
        continue
      if len(tokens) != 2 or tokens[1] not in ('0', '1', '2'):
        raise errors.BadFilesError(f'{path}:{line_number}: expected "<clip>.avi <0|1|2>", found {line!r}.')
      clip, split_id = tokens[0], int(tokens[1])
      if clip in listed_in:
        raise errors.BadFilesError(f'{path}:{line_number}: clip {clip} is also listed in {listed_in[clip]}.')
      listed_in[clip] = path
      if split_id in SPLIT_IDS:
        clips[clip] = SPLIT_IDS[split_id]
  return split


class Hmdb51(clip_builder.ClipBuilder):
  """HMDB51 from hmdb51_org.rar + test_train_splits.rar, or their extracted folders."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      Hmdb51Config(name=f'split{k}', split_number=k,
                   description=f'Official split {k}: 3,570 train / 1,530 test clips.') for k in (1, 2, 3)
  ]
  DEFAULT_CONFIG_NAME = 'split1'

  def _info(self) -> tfds.core.DatasetInfo:
    return self._clip_info(class_names=CLASS_NAMES, description=__doc__, homepage=_HOMEPAGE, citation=_CITATION)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = manual_files.manual_dir(dl_manager, self.name, MANUAL_DOWNLOAD_INSTRUCTIONS)
    splits_dir = manual_files.find_or_extract(dl_manager, root, SPLITS_DIR, SPLITS_RAR,
                                              MANUAL_DOWNLOAD_INSTRUCTIONS)
    split_number = self.builder_config.split_number
    split = read_split(splits_dir, split_number)
    class_dirs = self._class_dirs(dl_manager, root)
    clips = {'train': [], 'test': []}
    missing = []
    for label, name in enumerate(CLASS_NAMES):
      for clip, split_name in sorted(split[name].items()):
        path = class_dirs[name] / clip
        if not path.is_file():
          missing.append(f'{splits_dir / f"{name}_test_split{split_number}.txt"} names {clip}, '
                         f'but {path} does not exist')
          continue
        clips[split_name].append(clip_builder.Clip(video_id=pathlib.Path(clip).stem, label=label, path=path))
    if missing:
      raise errors.MissingFilesError(f'{len(missing)} clips of the HMDB51 split files are missing, e.g.:\n  '
                                     + '\n  '.join(missing[:10]) + '\nRe-extract hmdb51_org.rar completely.')
    return self._split_generators_for(clips)

  def _class_dirs(self, dl_manager: tfds.download.DownloadManager, root: pathlib.Path) -> dict[str, pathlib.Path]:
    """Class name -> folder of its .avi files: extracted by the user, else extracted from the RARs."""
    class_dirs = {}
    for name in CLASS_NAMES:
      found = manual_files.find(root, name, is_dir=True)
      if found:
        class_dirs[name] = found
    missing = [n for n in CLASS_NAMES if n not in class_dirs]
    if missing:
      # hmdb51_org.rar holds one <class>.rar per class; the user may have unpacked only the outer one.
      inner_roots = [root]
      outer = manual_files.find(root, VIDEOS_RAR, is_dir=False)
      if outer:
        inner_roots.append(manual_files.extract(dl_manager, outer))
      for name in missing:
        inner = next(filter(None, (manual_files.find(r, f'{name}.rar', is_dir=False) for r in inner_roots)), None)
        if inner:
          extracted = manual_files.extract(dl_manager, inner)
          class_dirs[name] = extracted / name if (extracted / name).is_dir() else extracted
    missing = [n for n in CLASS_NAMES if n not in class_dirs]
    if missing:
      raise errors.MissingFilesError(
          f'{root}: no videos for {len(missing)} HMDB51 classes ({", ".join(missing[:5])}...): expected a '
          f'folder <class>/ of .avi files per class, or {VIDEOS_RAR}, in this folder or a subfolder.\n'
          f'{MANUAL_DOWNLOAD_INSTRUCTIONS}')
    for name, folder in class_dirs.items():
      if not any(video_io.is_video_file(p.name) for p in folder.iterdir()):
        raise errors.MissingFilesError(f'{folder}: the folder of HMDB51 class {name!r} holds no video; re-extract '
                                       f'{name}.rar from {VIDEOS_RAR}.')
    logging.info('HMDB51 class folders found under %s', sorted({str(p.parent) for p in class_dirs.values()}))
    return class_dirs
