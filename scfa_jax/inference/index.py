"""Embedding files (one CSV row per video) and exact, chunked cosine search over them.

CSV because every tool reads it (``pandas.read_csv(path, index_col='video')``,
``np.loadtxt(path, delimiter=',', skiprows=1, usecols=range(1, D + 1))``,
spreadsheets, DuckDB) and because appending rows is safe: a run that is
interrupted leaves whole rows plus at most one cut-off line, which the next
run drops before it appends, so it resumes without redoing finished videos.
Floats are written with 9 significant digits, which round-trips float32 exactly.
Columns: ``video`` (path, or clip id), ``label`` (a class name or empty), then
``e0 ... e{D-1}``.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Iterable, Optional, Sequence

import numpy as np

from scfa_jax import errors
from scfa_jax.evaluation import knn


@dataclasses.dataclass(frozen=True)
class Index:
  """Videos and their embeddings: an embedding file, or the train split's kNN memory."""

  names: list[str]
  labels: list[str]  # class names ('' where unknown)
  features: np.ndarray  # [N, D] float32


def _header(dim: int) -> list[str]:
  return ['video', 'label'] + [f'e{i}' for i in range(dim)]


def finished(path: str) -> set[str]:
  """The videos already in ``path``; a cut-off last line (an interrupted run) is removed from the file."""
  if not os.path.isfile(path):
    return set()
  with open(path, 'rb+') as f:
    data = f.read()
    if data and not data.endswith(b'\n'):
      keep = data.rfind(b'\n') + 1
      f.seek(keep)
      f.truncate()
      data = data[:keep]
  rows = list(csv.reader(data.decode().splitlines()))
  return {row[0] for row in rows[1:] if row}


class Writer:
  """Appends rows to an embedding file, flushing each batch so a kill loses at most one line."""

  def __init__(self, path: str, dim: int):
    self.path = path
    exists = os.path.isfile(path) and os.path.getsize(path) > 0
    try:
      directory = os.path.dirname(os.path.abspath(path))
      os.makedirs(directory, exist_ok=True)
      self._file = open(path, 'a', newline='')
    except OSError as e:
      raise errors.BadFilesError(f'{path}: cannot write the embeddings there ({e.strerror}); pass a writable '
                                 '--out.') from None
    self._csv = csv.writer(self._file)
    if exists:
      with open(path) as f:
        header = next(csv.reader(f))
      if header != _header(dim):
        self._file.close()
        raise errors.BadFilesError(f'{path} holds embeddings of {len(header) - 2} dimensions, this model gives {dim}: '
                                   'pass another --out (or delete the file to start over).')
    else:
      self._csv.writerow(_header(dim))

  def write(self, rows: Iterable[tuple[str, str, np.ndarray]]) -> None:
    for name, label, vector in rows:
      self._csv.writerow([name, label] + [f'{x:.9g}' for x in np.asarray(vector, np.float32)])
    self._file.flush()

  def close(self) -> None:
    self._file.close()


def load(path: str) -> Index:
  """Reads an embedding file written by ``python -m scfa_jax.tools.embed``."""
  if not os.path.isfile(path):
    raise errors.MissingFilesError(f'{path}: no such embedding file; write one with python -m scfa_jax.tools.embed.')
  with open(path, newline='') as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if not header or header[:2] != ['video', 'label']:
      raise errors.BadFilesError(f'{path} is not an embedding file of python -m scfa_jax.tools.embed '
                                 '(its first columns must be video,label).')
    rows = [row for row in reader if len(row) == len(header)]
  if not rows:
    raise errors.BadFilesError(f'{path} holds no embedding; embed some videos into it first.')
  return Index(names=[r[0] for r in rows], labels=[r[1] for r in rows],
               features=np.asarray([r[2:] for r in rows], np.float32))


def nearest(index_features: np.ndarray, queries: np.ndarray, *, k: int,
            chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
  """(indices [Q, k], cosine similarities [Q, k]), best first: exact search, ``chunk`` index rows at a time.

  Memory stays at [Q, chunk + k] whatever the index size; ties keep index order.
  """
  queries = knn.l2_normalize(queries)
  k = min(k, len(index_features))
  best_sims = np.full((len(queries), 0), -np.inf)
  best_idx = np.zeros((len(queries), 0), np.int64)
  for start in range(0, len(index_features), chunk):
    sims = queries @ knn.l2_normalize(index_features[start:start + chunk]).T
    sims = np.concatenate([best_sims, sims], axis=1)
    idx = np.concatenate([best_idx, np.broadcast_to(np.arange(start, start + sims.shape[1] - best_idx.shape[1]),
                                                    (len(queries), sims.shape[1] - best_idx.shape[1]))], axis=1)
    order = np.argsort(-sims, axis=1, kind='stable')[:, :k]
    best_sims, best_idx = np.take_along_axis(sims, order, axis=1), np.take_along_axis(idx, order, axis=1)
  return best_idx, best_sims


def from_memory(clip_ids: Sequence[str], labels: np.ndarray, features: np.ndarray,
                class_names: Optional[Sequence[str]]) -> Index:
  """The train split's kNN memory (``evaluation.heads.Memory``) as an index."""
  names = ['' if int(i) < 0 else class_names[int(i)] if class_names else str(int(i)) for i in labels]  # -1: none
  return Index(names=[str(c) for c in clip_ids], labels=names, features=np.asarray(features, np.float32))
