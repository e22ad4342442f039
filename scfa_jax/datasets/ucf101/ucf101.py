"""ucf101_manual: UCF101 (Soomro et al., 2012) from the official files, in the shared small-frame format.

13,320 clips of 101 actions, with the three official train/test splits
(``ucfTrainTestlist/trainlist0<k>.txt``, ``testlist0<k>.txt``). Label ids
follow ``classInd.txt`` minus one (= TFDS' ``ucf101`` label ids).

Why not TFDS' own ``ucf101`` builder: it downloads a re-packed zip (not the
official UCF101.rar) at build time, so it cannot build offline from a hand
download; it needs an ``ffmpeg`` binary; and it stores every frame at full
size, which the input pipeline would decode at every step. This builder reads
the official files and stores frames like every other SCFA dataset.
"""

from __future__ import annotations

import dataclasses
import pathlib

import tensorflow_datasets as tfds

from scfa_jax import errors
from scfa_jax.datasets import clip_builder
from scfa_jax.datasets import manual_files
from scfa_jax.datasets import video_io

CLASS_NAMES = (
    'ApplyEyeMakeup', 'ApplyLipstick', 'Archery', 'BabyCrawling', 'BalanceBeam', 'BandMarching',
    'BaseballPitch', 'Basketball', 'BasketballDunk', 'BenchPress', 'Biking', 'Billiards', 'BlowDryHair',
    'BlowingCandles', 'BodyWeightSquats', 'Bowling', 'BoxingPunchingBag', 'BoxingSpeedBag', 'BreastStroke',
    'BrushingTeeth', 'CleanAndJerk', 'CliffDiving', 'CricketBowling', 'CricketShot', 'CuttingInKitchen',
    'Diving', 'Drumming', 'Fencing', 'FieldHockeyPenalty', 'FloorGymnastics', 'FrisbeeCatch', 'FrontCrawl',
    'GolfSwing', 'Haircut', 'Hammering', 'HammerThrow', 'HandstandPushups', 'HandstandWalking',
    'HeadMassage', 'HighJump', 'HorseRace', 'HorseRiding', 'HulaHoop', 'IceDancing', 'JavelinThrow',
    'JugglingBalls', 'JumpingJack', 'JumpRope', 'Kayaking', 'Knitting', 'LongJump', 'Lunges',
    'MilitaryParade', 'Mixing', 'MoppingFloor', 'Nunchucks', 'ParallelBars', 'PizzaTossing', 'PlayingCello',
    'PlayingDaf', 'PlayingDhol', 'PlayingFlute', 'PlayingGuitar', 'PlayingPiano', 'PlayingSitar',
    'PlayingTabla', 'PlayingViolin', 'PoleVault', 'PommelHorse', 'PullUps', 'Punch', 'PushUps', 'Rafting',
    'RockClimbingIndoor', 'RopeClimbing', 'Rowing', 'SalsaSpin', 'ShavingBeard', 'Shotput',
    'SkateBoarding', 'Skiing', 'Skijet', 'SkyDiving', 'SoccerJuggling', 'SoccerPenalty', 'StillRings',
    'SumoWrestling', 'Surfing', 'Swing', 'TableTennisShot', 'TaiChi', 'TennisSwing', 'ThrowDiscus',
    'TrampolineJumping', 'Typing', 'UnevenBars', 'VolleyballSpiking', 'WalkingWithDog', 'WallPushups',
    'WritingOnBoard', 'YoYo',
)
VIDEOS_DIR = 'UCF-101'
VIDEOS_RAR = 'UCF101.rar'
LISTS_DIR = 'ucfTrainTestlist'
LISTS_ZIP = 'UCF101TrainTestSplits-RecognitionTask.zip'

_HOMEPAGE = 'https://www.crcv.ucf.edu/data/UCF101.php'
_CITATION = """\
@article{soomro2012ucf101,
  title={{UCF101}: A Dataset of 101 Human Actions Classes From Videos in The Wild},
  author={Soomro, Khurram and Zamir, Amir Roshan and Shah, Mubarak},
  journal={arXiv preprint arXiv:1212.0402},
  year={2012}
}
"""
MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download from {_HOMEPAGE}:
  {VIDEOS_RAR} (6.5 GB) and {LISTS_ZIP} (the "Action Recognition" splits).
Put both in the manual folder as they are, or what they extract to: the folder
{VIDEOS_DIR}/ (101 class folders of .avi files) and the folder {LISTS_DIR}/
(classInd.txt, trainlist0[1-3].txt, testlist0[1-3].txt).
"""


@dataclasses.dataclass
class Ucf101Config(clip_builder.ClipBuilderConfig):
  """One official split."""

  split_number: int = 1


def read_class_index(lists_dir: pathlib.Path) -> tuple[str, ...]:
  """Class names in label order from ``classInd.txt`` (lines ``<1-based id> <name>``)."""
  path = lists_dir / 'classInd.txt'
  if not path.is_file():
    raise errors.MissingFilesError(
        f'{path}: UCF101 class index missing; {lists_dir} must hold the files of {LISTS_ZIP}.')
  names = {}
  for line_number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
    tokens = line.split()
    if not tokens:
      continue
    if len(tokens) != 2 or not tokens[0].isdigit():
      raise errors.BadFilesError(f'{path}:{line_number}: expected "<id> <ClassName>", found {line!r}.')
    names[int(tokens[0]) - 1] = tokens[1]
  if sorted(names) != list(range(len(names))):
    raise errors.BadFilesError(f'{path}: class ids are not 1..{len(names)}.')
  return tuple(names[i] for i in range(len(names)))


def read_list(path: pathlib.Path) -> list[tuple[int, str, str]]:
  """Entries of a train/test list as (line number, class name, file name).

  Lines are ``<Class>/<file>.avi`` with, in train lists, the 1-based label after a space.
  """
  if not path.is_file():
    raise errors.MissingFilesError(f'{path}: UCF101 split list missing; the folder must hold the files of {LISTS_ZIP}.')
  entries = []
  for line_number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
    tokens = line.split()
    if not tokens:
      continue
    parts = tokens[0].split('/')
    if len(parts) != 2 or len(tokens) > 2:
      raise errors.BadFilesError(f'{path}:{line_number}: expected "<Class>/<file>.avi [label]", found {line!r}.')
    class_name, file_name = parts
    if class_name not in CLASS_NAMES:
      raise errors.BadFilesError(f'{path}:{line_number}: unknown UCF101 class {class_name!r}.')
    if len(tokens) == 2 and tokens[1] != str(CLASS_NAMES.index(class_name) + 1):
      raise errors.BadFilesError(f'{path}:{line_number}: label {tokens[1]} does not match class {class_name!r} '
                                 f'(classInd.txt id {CLASS_NAMES.index(class_name) + 1}).')
    entries.append((line_number, class_name, file_name))
  return entries


def resolve_clip(class_dir: pathlib.Path, file_name: str, listed_at: str,
                 folder_index: dict[pathlib.Path, dict[str, pathlib.Path]]) -> pathlib.Path:
  """The listed clip's path; a name that differs only in case is accepted.

  The official lists and UCF101.rar agree, but re-packed copies differ in case
  (e.g. ``v_HandStandPushups_*`` vs ``v_HandstandPushups_*``).
  ``folder_index`` caches each class folder's lower-cased listing.
  """
  path = class_dir / file_name
  if path.is_file():
    return path
  if not class_dir.is_dir():
    raise errors.MissingFilesError(f'{listed_at} names {class_dir.name}/{file_name}, but the class folder '
                                   f'{class_dir} does not exist.')
  if class_dir not in folder_index:
    folder_index[class_dir] = {p.name.lower(): p for p in class_dir.iterdir() if video_io.is_video_file(p.name)}
    if not folder_index[class_dir]:
      raise errors.MissingFilesError(f'{class_dir}: the folder of UCF101 class {class_dir.name!r} holds no video.')
  if file_name.lower() in folder_index[class_dir]:
    return folder_index[class_dir][file_name.lower()]
  raise errors.MissingFilesError(f'{listed_at} names {class_dir.name}/{file_name}, but {path} does not exist.')


class Ucf101Manual(clip_builder.ClipBuilder):
  """UCF101 from UCF101.rar + the split zip, or their extracted folders."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      Ucf101Config(name=f'split{k}', split_number=k, description=f'Official split {k}.') for k in (1, 2, 3)
  ]
  DEFAULT_CONFIG_NAME = 'split1'

  def _info(self) -> tfds.core.DatasetInfo:
    return self._clip_info(class_names=CLASS_NAMES, description=__doc__, homepage=_HOMEPAGE, citation=_CITATION)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = manual_files.manual_dir(dl_manager, self.name, MANUAL_DOWNLOAD_INSTRUCTIONS)
    lists_dir = manual_files.find_or_extract(dl_manager, root, LISTS_DIR, LISTS_ZIP,
                                             MANUAL_DOWNLOAD_INSTRUCTIONS)
    if read_class_index(lists_dir) != CLASS_NAMES:
      raise errors.BadFilesError(f'{lists_dir / "classInd.txt"}: not the 101 UCF101 classes in their official order.')
    videos_dir = manual_files.find_or_extract(dl_manager, root, VIDEOS_DIR, VIDEOS_RAR,
                                              MANUAL_DOWNLOAD_INSTRUCTIONS)
    k = self.builder_config.split_number
    folder_index: dict[pathlib.Path, dict[str, pathlib.Path]] = {}
    clips = {'train': [], 'test': []}
    for split_name, list_name in (('train', f'trainlist0{k}.txt'), ('test', f'testlist0{k}.txt')):
      for line_number, class_name, file_name in read_list(lists_dir / list_name):
        path = resolve_clip(videos_dir / class_name, file_name, f'{lists_dir / list_name}:{line_number}',
                            folder_index)
        clips[split_name].append(clip_builder.Clip(video_id=pathlib.Path(file_name).stem,
                                                   label=CLASS_NAMES.index(class_name), path=path))
    return self._split_generators_for(clips)
