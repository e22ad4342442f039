"""What evaluation fitted, kept in the workdir in plain files so that inference can use it.

``<workdir>/heads/`` holds

* ``heads.json``: the class names, the checkpoint step the heads belong to, the
  pixel normalisation, the test-time views, and which heads exist;
* ``linear_probe.npz``: the probe's standardisation (mean, scale) and its
  logistic regression (coef, intercept, the labels it was fitted on), from
  which :class:`LinearProbe` reproduces scikit-learn's ``predict_proba``;
* ``knn_memory.npz``: the train split's features, labels and clip ids, the
  memory of the kNN vote and of retrieval.

NumPy's ``.npz`` and JSON, never pickle: any tool reads them and loading one
cannot run code. A fine-tuned classifier stays where fine-tuning puts it
(``finetune.run_dir``); ``heads.json`` names that folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional, Sequence

import numpy as np
import tensorflow_datasets as tfds

from scfa_jax import errors
from scfa_jax.data import records
from scfa_jax.data import traced
from scfa_jax.evaluation import knn

HEADS_DIR = 'heads'
META_FILE = 'heads.json'
PROBE_FILE = 'linear_probe.npz'
MEMORY_FILE = 'knn_memory.npz'
FORMAT_VERSION = 1


class NoHeadsError(errors.MissingFilesError):
  """A workdir evaluated before heads were saved, or not evaluated at all."""


@dataclasses.dataclass(frozen=True)
class LinearProbe:
  """StandardScaler + multinomial LogisticRegression as plain arrays.

  ``labels`` are the classes the probe saw in the train split (sklearn's
  ``classes_``); probabilities are returned over all ``num_classes``, 0 for a
  class the train split lacked.
  """

  mean: np.ndarray  # [D]
  scale: np.ndarray  # [D]
  coef: np.ndarray  # [C', D] (C' = 1 for a two-class probe, as sklearn stores it)
  intercept: np.ndarray  # [C']
  labels: np.ndarray  # [C''] int, the fitted classes

  @classmethod
  def from_sklearn(cls, pipeline: Any) -> 'LinearProbe':
    scaler, regression = pipeline[0], pipeline[-1]
    return cls(mean=np.asarray(scaler.mean_, np.float64), scale=np.asarray(scaler.scale_, np.float64),
               coef=np.asarray(regression.coef_, np.float64), intercept=np.asarray(regression.intercept_, np.float64),
               labels=np.asarray(regression.classes_, np.int64))

  def decision(self, features: np.ndarray) -> np.ndarray:
    """Class scores [N, C''] whose softmax is ``predict_proba`` (a two-class probe scores [0, z])."""
    z = (np.asarray(features, np.float64) - self.mean) / self.scale @ self.coef.T + self.intercept
    return np.concatenate([np.zeros_like(z), z], axis=1) if self.coef.shape[0] == 1 else z

  def as_dense(self, num_classes: int) -> dict[str, np.ndarray]:
    """The probe as a Dense layer on raw features: ``{'kernel': [D, num_classes], 'bias': [num_classes]}``.

    The standardisation is folded in: ((f - mean) / scale) @ coef.T + b = f @ (coef / scale).T + b',
    b' = b - (mean / scale) @ coef.T. Its logits' softmax is :meth:`predict_proba`; a class the probe never
    saw gets zero weights and a bias 30 below the lowest fitted one (probability ~1e-13, not exactly 0).
    """
    weights = (self.coef / self.scale).T  # [D, C']
    bias = self.intercept - (self.mean / self.scale) @ self.coef.T
    if self.coef.shape[0] == 1:  # two classes: sklearn scores the second against the first
      weights = np.concatenate([np.zeros_like(weights), weights], axis=1)
      bias = np.concatenate([np.zeros_like(bias), bias])
    kernel = np.zeros((weights.shape[0], num_classes))
    full_bias = np.full((num_classes,), bias.min() - 30.0)
    kernel[:, self.labels], full_bias[self.labels] = weights, bias
    return {'kernel': kernel.astype(np.float32), 'bias': full_bias.astype(np.float32)}

  def predict_proba(self, features: np.ndarray, num_classes: int) -> np.ndarray:
    """[N, num_classes] probabilities, as sklearn's ``predict_proba`` (columns placed at their labels)."""
    z = self.decision(features)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    out = np.zeros((len(p), num_classes))
    out[:, self.labels] = p
    return out


@dataclasses.dataclass(frozen=True)
class Memory:
  """The train split as the kNN vote and retrieval saw it."""

  features: np.ndarray  # [N, D]
  labels: np.ndarray  # [N]
  clip_ids: np.ndarray  # [N] str
  k: int
  temperature: float

  def knn_proba(self, features: np.ndarray, num_classes: int) -> np.ndarray:
    """Evaluation's similarity-weighted kNN vote, normalised to sum to 1 per video."""
    scores = knn.knn_scores(self.features, self.labels, features, k=self.k, num_classes=num_classes,
                            temperature=self.temperature)
    return scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-300)


@dataclasses.dataclass(frozen=True)
class Heads:
  """Everything ``heads.json`` lists, loaded."""

  meta: dict[str, Any]
  probe: Optional[LinearProbe]
  memory: Optional[Memory]

  @property
  def class_names(self) -> list[str]:
    return list(self.meta['class_names'])


def heads_dir(workdir: str) -> str:
  return os.path.join(workdir, HEADS_DIR)


def split_clip_ids(builder: tfds.core.DatasetBuilder, split: str, frames_key: str = 'frames') -> np.ndarray:
  """The ``video_id`` of every video of ``split``, in the order evaluation embeds them (files unshuffled)."""
  ids = records.read_undecoded(builder, split, frames_key).map(traced.as_written(lambda ex: ex['video_id']))
  return np.asarray([video_id.decode() for video_id in ids.as_numpy_iterator()], dtype=str)


def save(workdir: str, *, meta: dict[str, Any], probe: Optional[LinearProbe] = None,
         memory: Optional[Memory] = None) -> str:
  """Writes the heads (files are replaced whole: a reader never sees half a file). Returns the folder."""
  directory = heads_dir(workdir)
  os.makedirs(directory, exist_ok=True)
  meta = {'format_version': FORMAT_VERSION, **meta, 'linear_probe': None, 'knn': None}
  if probe is not None:
    _write_npz(os.path.join(directory, PROBE_FILE), **dataclasses.asdict(probe))
    meta['linear_probe'] = PROBE_FILE
  if memory is not None:
    _write_npz(os.path.join(directory, MEMORY_FILE), features=memory.features, labels=memory.labels,
               clip_ids=np.asarray(memory.clip_ids, dtype=str))
    meta['knn'] = {'file': MEMORY_FILE, 'k': int(memory.k), 'temperature': float(memory.temperature)}
  tmp = os.path.join(directory, META_FILE + '.tmp')
  with open(tmp, 'w') as f:
    json.dump(meta, f, indent=2)
  os.replace(tmp, os.path.join(directory, META_FILE))
  return directory


def _write_npz(path: str, **arrays: np.ndarray) -> None:
  tmp = path + '.tmp.npz'
  np.savez(tmp, **arrays)
  os.replace(tmp, path)


def load(workdir: str) -> Heads:
  """Reads ``<workdir>/heads``.

  Raises:
    NoHeadsError: the workdir has no saved heads (evaluated before they were
      saved, or never evaluated); the message names the command that writes them.
  """
  path = os.path.join(heads_dir(workdir), META_FILE)
  if not os.path.isfile(path):
    raise NoHeadsError(
        f'{path} not found: this workdir was not evaluated since heads are saved. Write them with '
        f'python -m scfa_jax.main --mode=eval --workdir={workdir} --config=<the config it was trained with>.')
  try:
    with open(path) as f:
      meta = json.load(f)
    probe = memory = None
    if meta.get('linear_probe'):
      with np.load(os.path.join(heads_dir(workdir), meta['linear_probe']), allow_pickle=False) as z:
        probe = LinearProbe(**{k: z[k] for k in ('mean', 'scale', 'coef', 'intercept', 'labels')})
    if meta.get('knn'):
      with np.load(os.path.join(heads_dir(workdir), meta['knn']['file']), allow_pickle=False) as z:
        memory = Memory(features=z['features'], labels=z['labels'], clip_ids=z['clip_ids'], k=meta['knn']['k'],
                        temperature=meta['knn']['temperature'])
  except (OSError, ValueError, KeyError) as e:
    raise errors.BadFilesError(f'{heads_dir(workdir)}: the saved heads are damaged ({type(e).__name__}: {e}); '
                               f'write them again with --mode=eval on this workdir.') from e
  return Heads(meta=meta, probe=probe, memory=memory)


def build_meta(*, step: int, class_names: Sequence[str], preprocessing_mode: str, num_test_clips: int,
               local_views: int, finetune_dir: Optional[str] = None) -> dict[str, Any]:
  """The descriptive part of ``heads.json`` (the head entries are filled in by :func:`save`)."""
  return {
      'step': int(step),
      'class_names': list(class_names),
      'preprocessing_mode': preprocessing_mode,
      'embedding': 'features',
      'num_test_clips': int(num_test_clips),
      'local_views': int(local_views),
      'finetune_dir': finetune_dir,
  }
