"""kinetics: Kinetics-400/600/700 (Kay et al. 2017; Carreira et al. 2018, 2019) from the official CSVs and your clips.

The official annotations are CSV files, one per split (``train.csv``,
``validate.csv``, ``test.csv``; some mirrors name them ``val.csv`` or
``kinetics-400_train.csv``), with the header
``label,youtube_id,time_start,time_end,split`` (Kinetics-400 adds ``is_cc``;
some test CSVs have no ``label``). The clips are YouTube segments that you
download yourself; the common download scripts (and the CVDF mirror) name them
``<youtube_id>_<time_start:06d>_<time_end:06d>.mp4``, flat or in per-split /
per-class folders: every video below the manual folder is found by that name
(or by ``<youtube_id>`` alone). Labels are the train CSV's class names in
sorted order. Splits: 'train', 'validation', and 'test' when its CSV has labels
(a test CSV without labels is not stored; it has nothing to train or score on).

Videos vanish from YouTube, so about a tenth of the listed clips are typically
absent from a download: they are counted, logged, recorded in the metadata
(``missing_clips``) and left out, up to ``max_missing_fraction`` (0.3 by
default) of a split; clips that are there but do not decode follow
``max_bad_fraction`` as in every builder.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import pathlib
import re

import tensorflow_datasets as tfds

from scfa_jax import errors
from scfa_jax.datasets import clip_builder
from scfa_jax.datasets import manual_files

SPLIT_NAMES = {'train': 'train', 'validate': 'validation', 'val': 'validation', 'valid': 'validation',
               'validation': 'validation', 'test': 'test'}
_CSV_NAME = re.compile(r'^(?:.*[_-])?(train|validate|validation|valid|val|test)\.csv$', re.IGNORECASE)

_HOMEPAGE = 'https://github.com/google-deepmind/kinetics-i3d'
_CITATION = """\
@article{kay2017kinetics,
  title={The Kinetics Human Action Video Dataset},
  author={Kay, Will and Carreira, Joao and Simonyan, Karen and Zhang, Brian and Hillier, Chloe and
          Vijayanarasimhan, Sudheendra and Viola, Fabio and Green, Tim and Back, Trevor and Natsev, Paul and
          Suleyman, Mustafa and Zisserman, Andrew},
  journal={arXiv preprint arXiv:1705.06950},
  year={2017}
}
"""
MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put in the manual folder (or one or two folders below it, e.g. kinetics400/ or
annotations/) the official annotation CSVs of your Kinetics version
(train.csv, validate.csv and optionally test.csv; e.g. from
https://github.com/cvdfoundation/kinetics-dataset) and the clips you downloaded,
named <youtube_id>_<time_start:06d>_<time_end:06d>.mp4, flat or in folders at
any depth (per class, per split).
"""


@dataclasses.dataclass
class KineticsConfig(clip_builder.ClipBuilderConfig):
  """One Kinetics version."""

  num_classes: int = 400


class BadAnnotationError(errors.BadFilesError):
  """A Kinetics CSV that cannot be read."""


def clip_name(youtube_id: str, time_start: str, time_end: str) -> str:
  """The file stem the download scripts give a clip: ``<youtube_id>_<start:06d>_<end:06d>``."""
  return f'{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}'


def find_csvs(root: pathlib.Path) -> dict[str, pathlib.Path]:
  """Split ('train' | 'validation' | 'test') -> its annotation CSV, found up to two folders below ``root``."""
  found: dict[str, list[pathlib.Path]] = {}
  for path in manual_files.find_shallow(root, _CSV_NAME.match):
    found.setdefault(SPLIT_NAMES[_CSV_NAME.match(path.name).group(1).lower()], []).append(path)
  twice = {split: paths for split, paths in found.items() if len(paths) > 1}
  if twice:
    raise errors.BadFilesError(f'{root}: several annotation CSVs for one split: {twice}; keep the one of your '
                               'Kinetics version.')
  if 'train' not in found:
    raise errors.MissingFilesError(f'{root}: no Kinetics train CSV (train.csv) in this folder or two levels '
                                   f'below.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}')
  return {split: paths[0] for split, paths in found.items()}


def read_csv(path: pathlib.Path) -> list[tuple[str, str, str | None]]:
  """``(clip name, youtube_id, label or None)`` per row of an official CSV, in file order.

  Raises:
    BadAnnotationError: a header without ``youtube_id``/``time_start``/``time_end``,
      a malformed time, or a clip listed twice.
  """
  rows, seen = [], set()
  with open(path, newline='', encoding='utf-8') as f:
    reader = csv.DictReader(f)
    needed = {'youtube_id', 'time_start', 'time_end'}
    if not needed <= set(reader.fieldnames or ()):
      raise BadAnnotationError(f'{path}: expected a Kinetics CSV with the columns label,youtube_id,time_start,'
                               f'time_end,split; the header is {reader.fieldnames}.')
    for line_number, row in enumerate(reader, 2):
      try:
        youtube_id = row['youtube_id'].strip()
        name = clip_name(youtube_id, row['time_start'], row['time_end'])
      except (TypeError, ValueError):
        raise BadAnnotationError(f'{path}:{line_number}: expected integer times, found {row}.') from None
      if name in seen:
        raise BadAnnotationError(f'{path}:{line_number}: clip {name} is listed twice.')
      seen.add(name)
      label = (row.get('label') or '').strip() or None
      rows.append((name, youtube_id, label))
  return rows


class Kinetics(clip_builder.ClipBuilder):
  """Kinetics-400/600/700 from the official CSVs and downloaded clips."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  DEFAULT_MAX_MISSING_FRACTION = 0.3
  BUILDER_CONFIGS = [
      KineticsConfig(name='k400', num_classes=400, description='Kinetics-400: ~240k train / 20k validation clips.'),
      KineticsConfig(name='k600', num_classes=600, description='Kinetics-600: ~390k train / 30k validation clips.'),
      KineticsConfig(name='k700', num_classes=700, description='Kinetics-700(-2020): ~545k train / 35k validation.'),
  ]
  DEFAULT_CONFIG_NAME = 'k400'

  def _info(self) -> tfds.core.DatasetInfo:
    return self._clip_info(class_names=None, description=__doc__, homepage=_HOMEPAGE, citation=_CITATION)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = manual_files.manual_dir(dl_manager, self.name, MANUAL_DOWNLOAD_INSTRUCTIONS)
    csvs = find_csvs(root)
    annotations = {split: read_csv(path) for split, path in sorted(csvs.items())}
    class_names = sorted({label for _, _, label in annotations['train'] if label})
    if len(class_names) != self.builder_config.num_classes:
      logging.warning('%s: %s names %d classes where %s has %d; labels follow the CSV.', self.info.full_name,
                      csvs['train'], len(class_names), self.builder_config.name, self.builder_config.num_classes)
    self.info.features['label'].names = class_names
    label_of = {name: i for i, name in enumerate(class_names)}
    videos = manual_files.index_videos(root)
    clips = {}
    for split, rows in annotations.items():
      if not any(label for _, _, label in rows):
        logging.info('%s: %s has no labels; split %r is not stored.', self.info.full_name, csvs[split], split)
        continue
      unknown = sorted({str(label) for _, _, label in rows if label not in label_of})
      if unknown:
        raise BadAnnotationError(f'{csvs[split]}: labels that {csvs["train"]} does not have: {unknown[:5]} '
                                 '(or rows without a label); are both CSVs of the same Kinetics version?')
      listed = []
      for name, youtube_id, label in rows:
        path = videos.get(name) or videos.get(youtube_id)  # '<youtube_id>.mp4', as some scripts save it.
        listed.append((name, clip_builder.Clip(video_id=name, label=label_of[label], path=path) if path else None))
      clips[split] = self._present_clips(split, listed, 'Download the missing clips (or check the folder).')
    return self._split_generators_for(clips)
