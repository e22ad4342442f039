"""video_folder: your own videos, one subfolder per class (or no labels at all), in the shared small-frame format.

Manual folder layout::

  <class>/<clip>.mp4        any ending in video_io.VIDEO_EXTENSIONS, at any depth below <class>/
  train.txt, test.txt       optional: one clip per line, its path relative to the manual folder
                            (e.g. "jump/day1/clip 3.mp4"); blank lines and lines starting with # are skipped

Unlabelled videos (config ``unlabelled``, chosen by itself for a folder that
holds videos and no subfolder): every video at any depth is one clip, or, with
a train.txt (and optionally test.txt), the clips those lists name. The dataset
then has no ``label`` feature (``data.labels.has_labels``), and its info's
metadata says ``labelled: false``; it trains with a loss that reads no labels
(``loss.positives='video'``) and evaluation reports that there is nothing to
score. Without lists everything goes to 'train': there is no held-out split.

Classes are the subfolder names; label ids follow their sorted order. With the
two lists, clips listed in neither are not stored. Without them, every class
is split on its own, deterministically: its clips are ordered by the CRC32 of
their relative path and the first round(test_fraction * n) go to 'test'. If
several clips are cut from one recording, write the lists yourself so that a
recording never lands on both sides.

The dataset is stored as ``video_folder/<config>`` in ``data_dir``: give each
of your datasets its own ``data_dir``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pathlib
import zlib

import tensorflow_datasets as tfds

from scfa_jax import errors
from scfa_jax.datasets import clip_builder
from scfa_jax.datasets import manual_files
from scfa_jax.datasets import video_io

LIST_FILES = {'train': 'train.txt', 'test': 'test.txt'}
MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Point the manual folder at a folder with one subfolder of videos per class,
and optionally train.txt and test.txt listing clip paths relative to it.
"""


@dataclasses.dataclass
class VideoFolderConfig(clip_builder.ClipBuilderConfig):
  """How a folder without lists is split."""

  test_fraction: float = 0.3  # Share of each class's clips put in 'test' when there are no list files.
  labelled: bool = True  # False: folders are not classes; the dataset stores no labels.


UNLABELLED_CONFIG = 'unlabelled'


def scan_videos(root: pathlib.Path) -> list[str]:
  """Sorted relative POSIX paths of every video below ``root`` (hidden folders skipped).

  Raises:
    errors.MissingFilesError: no video anywhere below ``root``.
  """
  videos = sorted(p.relative_to(root).as_posix() for p in root.rglob('*')
                  if p.is_file() and video_io.is_video_file(p.name)
                  and not any(part.startswith('.') for part in p.relative_to(root).parts))
  if not videos:
    raise errors.MissingFilesError(f'{root}: holds no video (looked for files ending in '
                                   f'{", ".join(video_io.VIDEO_EXTENSIONS)} at any depth).')
  return videos


def is_unlabelled_folder(root: pathlib.Path) -> bool:
  """A folder of videos without any subfolder: nothing names a class, so its videos are unlabelled."""
  entries = [p for p in root.iterdir() if not p.name.startswith('.')] if root.is_dir() else []
  return (not any(p.is_dir() for p in entries)
          and any(p.is_file() and video_io.is_video_file(p.name) for p in entries))


def scan_classes(root: pathlib.Path) -> dict[str, list[str]]:
  """Class name -> sorted relative POSIX paths of its videos.

  Raises:
    FileNotFoundError: no class folder, or a class folder without any video.
  """
  class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith('.'))
  if not class_dirs:
    raise errors.MissingFilesError(f'{root}: holds no class subfolder.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}')
  classes = {}
  for class_dir in class_dirs:
    videos = sorted(p.relative_to(root).as_posix() for p in class_dir.rglob('*')
                    if p.is_file() and video_io.is_video_file(p.name))
    if not videos:
      raise errors.MissingFilesError(f'{class_dir}: class folder without any video (looked for files ending in '
                                     f'{", ".join(video_io.VIDEO_EXTENSIONS)}). Remove it or add its videos.')
    classes[class_dir.name] = videos
  return classes


def read_list(path: pathlib.Path, known: set[str]) -> list[str]:
  """Relative clip paths of a train/test list; every one must be a video of a class folder."""
  clips, seen = [], set()
  for line_number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
    clip = line.strip().replace('\\', '/')
    if not clip or clip.startswith('#'):
      continue
    if clip in seen:
      raise errors.BadFilesError(f'{path}:{line_number}: {clip!r} is listed twice.')
    if clip not in known:
      raise errors.MissingFilesError(
          f'{path}:{line_number}: names {clip!r}, which is not a video inside a class folder '
          f'of {path.parent} (paths are relative to that folder, e.g. "<class>/<clip>.mp4").')
    clips.append(clip)
    seen.add(clip)
  return clips


def hash_split(videos: list[str], test_fraction: float) -> dict[str, list[str]]:
  """Deterministic per-class split of one class's videos (see the module docstring)."""
  ordered = sorted(videos, key=lambda v: (zlib.crc32(v.encode('utf-8')), v))
  num_test = math.floor(test_fraction * len(ordered) + 0.5)
  return {'test': sorted(ordered[:num_test]), 'train': sorted(ordered[num_test:])}


class VideoFolder(clip_builder.ClipBuilder):
  """Class-named subfolders of videos, with optional train/test lists."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      VideoFolderConfig(name='default', description='Lists if present, else a 70/30 split per class.'),
      VideoFolderConfig(name=UNLABELLED_CONFIG, labelled=False,
                        description='No labels: every video (or those train.txt/test.txt list) as a clip.'),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    return self._clip_info(class_names=None, description=__doc__, labelled=self.builder_config.labelled)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = manual_files.manual_dir(dl_manager, self.name, MANUAL_DOWNLOAD_INSTRUCTIONS)
    self.info.metadata['source_folder'] = str(root)
    self.info.metadata['labelled'] = self.builder_config.labelled
    if not self.builder_config.labelled:
      return self._unlabelled_splits(root)
    if is_unlabelled_folder(root):
      raise errors.MissingFilesError(
          f'{root}: holds videos but no class subfolder. For unlabelled videos set '
          f'--config.data.builder_config={UNLABELLED_CONFIG}; for labels, put each class in a subfolder.')
    classes = scan_classes(root)
    class_names = sorted(classes)
    self.info.features['label'].names = class_names
    label_of = {v: label for label, name in enumerate(class_names) for v in classes[name]}

    lists = {split: root / name for split, name in LIST_FILES.items()}
    present = [p for p in lists.values() if p.is_file()]
    if len(present) == 1:
      raise errors.MissingFilesError(
          f'{present[0]} exists but {set(lists.values()) - set(present)} does not: give both '
          f'lists, or neither for the automatic per-class split.')
    if present:
      splits = {split: read_list(path, set(label_of)) for split, path in lists.items()}
      both = sorted(set(splits['train']) & set(splits['test']))
      if both:
        raise errors.BadFilesError(
            f'{lists["train"]} and {lists["test"]} both list {both[:5]}: a clip must be on one side.')
      unused = len(label_of) - len(set(splits['train']) | set(splits['test']))
      if unused:
        logging.info('video_folder: %d videos of %s are in neither list and are not stored.', unused, root)
    else:
      splits = {'train': [], 'test': []}
      for name in class_names:
        for split, videos in hash_split(classes[name], self.builder_config.test_fraction).items():
          splits[split].extend(videos)
    return self._split_generators_for({
        split: [clip_builder.Clip(video_id=v, label=label_of[v], path=root / v) for v in videos]
        for split, videos in splits.items()
    })

  def _unlabelled_splits(self, root: pathlib.Path):
    """Every video as a 'train' clip, or the clips of train.txt (and test.txt); no labels."""
    videos = scan_videos(root)
    lists = {split: root / name for split, name in LIST_FILES.items() if (root / name).is_file()}
    if 'test' in lists and 'train' not in lists:
      raise errors.MissingFilesError(f'{lists["test"]} exists but {root / LIST_FILES["train"]} does not: an '
                                     'unlabelled folder needs train.txt to use test.txt.')
    splits = {split: read_list(path, set(videos)) for split, path in lists.items()} or {'train': videos}
    return self._split_generators_for({
        split: [clip_builder.Clip(video_id=v, label=None, path=root / v) for v in clips]
        for split, clips in splits.items()
    })
