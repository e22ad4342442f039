"""ssv2: Something-Something v2 (Goyal et al., ICCV 2017) from the official label files and videos.

220,847 clips of 174 classes, each a template of an action on objects
("Pushing something from left to right"). The official download is
``20bn-something-something-v2-00`` ... ``-19`` (parts of one archive: ``cat``
them and extract, giving ``20bn-something-something-v2/<id>.webm``, VP9 at 12 fps,
240 px high) and the labels archive: ``something-something-v2-labels.json``
(class text -> id), ``something-something-v2-{train,validation,test}.json``
(lists of ``{"id", "label", "template", "placeholders"}``; the class is the
template with its brackets removed; the test list has only ids). Splits:
'train' (168,913) and 'validation' (24,777); the test split has no public
labels and is not stored. The classes name directions: train without
horizontal flips (``configs/ssv2.py``).
"""

from __future__ import annotations

import json
import pathlib

import tensorflow_datasets as tfds

from scfa_jax import errors
from scfa_jax.datasets import clip_builder
from scfa_jax.datasets import manual_files

PREFIX = 'something-something-v2'
LABELS_JSON = f'{PREFIX}-labels.json'
SPLIT_JSONS = {'train': f'{PREFIX}-train.json', 'validation': f'{PREFIX}-validation.json'}
NUM_CLASSES = 174

_HOMEPAGE = 'https://developer.qualcomm.com/software/ai-datasets/something-something'
_CITATION = """\
@inproceedings{goyal2017something,
  title={The "Something Something" Video Database for Learning and Evaluating Visual Common Sense},
  author={Goyal, Raghav and Ebrahimi Kahou, Samira and Michalski, Vincent and Materzynska, Joanna and
          Westphal, Susanne and Kim, Heuna and Haenel, Valentin and Fruend, Ingo and Yianilos, Peter and
          Mueller-Freitag, Moritz and others},
  booktitle={ICCV},
  year={2017}
}
"""
MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download Something-Something v2 from {_HOMEPAGE}: the video parts
20bn-something-something-v2-00 ... -19 and the labels. Extract the videos
(`cat 20bn-something-something-v2-?? | tar -xz`) and the labels, and put in the
manual folder (or one or two folders below it) the folder
20bn-something-something-v2/ of <id>.webm files, {LABELS_JSON} and
{SPLIT_JSONS['train']}, {SPLIT_JSONS['validation']}.
"""


def _find_json(root: pathlib.Path, name: str) -> pathlib.Path:
  found = manual_files.find_shallow(root, lambda n: n == name)
  if not found:
    raise errors.MissingFilesError(f'{root}: no {name} in this folder or two levels below.\n'
                                   f'{MANUAL_DOWNLOAD_INSTRUCTIONS}')
  return found[0]


def _load_json(path: pathlib.Path):
  try:
    return json.loads(path.read_text(encoding='utf-8'))
  except (ValueError, UnicodeDecodeError) as e:
    raise errors.BadFilesError(f'{path}: not valid JSON ({e}); extract the labels archive again.') from None


def read_labels(path: pathlib.Path) -> list[str]:
  """The class names of ``something-something-v2-labels.json``, ordered by their id."""
  labels = _load_json(path)
  try:
    by_id = {int(i): name for name, i in labels.items()}
  except (AttributeError, TypeError, ValueError):
    raise errors.BadFilesError(f'{path}: expected {{"<class text>": "<id>", ...}}.') from None
  if sorted(by_id) != list(range(len(by_id))):
    raise errors.BadFilesError(f'{path}: the class ids are not 0..{len(by_id) - 1}.')
  return [by_id[i] for i in range(len(by_id))]


def read_split(path: pathlib.Path, label_of: dict[str, int]) -> list[tuple[str, int]]:
  """``(video id, label)`` per entry of a train/validation JSON; the class is the template without brackets."""
  entries = _load_json(path)
  out, seen = [], set()
  for index, entry in enumerate(entries if isinstance(entries, list) else [None]):
    if not isinstance(entry, dict) or 'id' not in entry or 'template' not in entry:
      raise errors.BadFilesError(f'{path}: entry {index} is {entry!r}; expected {{"id", "label", "template", ...}}.')
    video_id, name = str(entry['id']), entry['template'].replace('[', '').replace(']', '')
    if name not in label_of:
      raise errors.BadFilesError(f'{path}: entry {index} (id {video_id}) has the class {name!r}, which '
                                 f'{LABELS_JSON} does not list.')
    if video_id in seen:
      raise errors.BadFilesError(f'{path}: id {video_id} is listed twice.')
    seen.add(video_id)
    out.append((video_id, label_of[name]))
  return out


class Ssv2(clip_builder.ClipBuilder):
  """Something-Something v2 from the official JSONs and the extracted .webm videos."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [clip_builder.ClipBuilderConfig(name='default', description='Official train/validation.')]
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    return self._clip_info(class_names=None, description=__doc__, homepage=_HOMEPAGE, citation=_CITATION)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = manual_files.manual_dir(dl_manager, self.name, MANUAL_DOWNLOAD_INSTRUCTIONS)
    class_names = read_labels(_find_json(root, LABELS_JSON))
    self.info.features['label'].names = class_names
    label_of = {name: i for i, name in enumerate(class_names)}
    videos = manual_files.index_videos(root)
    clips = {}
    for split, name in SPLIT_JSONS.items():
      listed = [(video_id, clip_builder.Clip(video_id=video_id, label=label, path=videos[video_id])
                 if video_id in videos else None) for video_id, label in read_split(_find_json(root, name), label_of)]
      clips[split] = self._present_clips(split, listed, 'Extract all 20 parts of the video archive.')
    return self._split_generators_for(clips)
