"""Embedding files (one CSV row per video) and exact, chunked cosine search over them.

The file::

  # {"format": "scfa_jax embeddings 2", "workdir": ..., "step": ..., "config": ..., "views": ..., "dim": D}
  video,label,e0,...,e{D-1}
  /abs/real/path/clip.mp4,,0.0123,...

The first line records the model that wrote the file (``inference.identity``),
so that another model's rows are never appended to it and ``search`` refuses
to compare another model's queries with it. ``video`` is the file's resolved
real path (``paths.key``: every spelling of one file is one row; bytes that
are not UTF-8 written ``\\xNN``), ``label`` a class name or empty, floats with 9
significant digits (float32 round-trips exactly). Read it with
:func:`read_embeddings` (any CSV reader that skips the first line works; not
``np.loadtxt``, which splits a quoted name holding a comma).

CSV because every tool reads it and because appending is safe: rows are
written and flushed one video at a time (fsync every few seconds), so a killed
run leaves whole rows plus at most one cut-off line, which the next run
drops before it appends.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
from typing import Optional, Sequence

import numpy as np

from scfa_jax import errors
from scfa_jax.evaluation import knn
from scfa_jax.inference import identity as identity_lib

COMMENT = '# '
SYNC_EVERY_S = 2.0  # fsync at most this long after a row was written (a flush reaches the OS at once)


@dataclasses.dataclass(frozen=True)
class Index:
  """Videos and their embeddings: an embedding file, or the train split's kNN memory."""

  names: list[str]
  labels: list[str]  # class names ('' where unknown)
  features: np.ndarray  # [N, D] float32
  identity: Optional[identity_lib.Identity] = None  # the model that wrote them (None: not recorded)


def _header(dim: int) -> list[str]:
  return ['video', 'label'] + [f'e{i}' for i in range(dim)]


def _not_ours(path: str) -> errors.BadFilesError:
  return errors.BadFilesError(f'{path} is not an embedding file of python -m scfa_jax.tools.embed (its first line '
                              'must be "# {...scfa_jax embeddings...}" or the header video,label,e0,...); it was not '
                              'changed: pass another --out.')


def _split(path: str, data: bytes) -> tuple[Optional[identity_lib.Identity], list[str], list[bytes], int]:
  """(identity, header, whole data lines, length of the whole lines) of a file's bytes; raises if not ours."""
  whole = data[:data.rfind(b'\n') + 1]
  lines = whole.splitlines()
  found = None
  if lines and lines[0].startswith(COMMENT.encode()):
    try:
      meta = json.loads(lines[0][len(COMMENT):])
      found = identity_lib.Identity.from_json(meta) if meta.get('format') == identity_lib.FORMAT else None
    except (ValueError, TypeError):
      found = None
    if found is None:
      raise _not_ours(path)
    lines = lines[1:]
  try:
    header = next(csv.reader([lines[0].decode()])) if lines else []
  except UnicodeDecodeError:
    raise _not_ours(path) from None
  if found is None and (not header or header[:2] != ['video', 'label'] or
                        header[2:] != [f'e{i}' for i in range(len(header) - 2)]):
    raise _not_ours(path)
  if found is not None and header and header != _header(found.dim):
    raise _not_ours(path)
  return found, header, lines[1:], len(whole)


def _read(path: str) -> bytes:
  try:
    with open(path, 'rb') as f:
      return f.read()
  except OSError as e:
    raise errors.BadFilesError(f'{path}: cannot read it ({e.strerror}).') from None


def _head(path: str) -> bytes:
  """The file's first two lines (the identity and the header), read without the rest."""
  head = b''
  with open(path, 'rb') as f:
    while head.count(b'\n') < 2:
      chunk = f.read(1 << 16)
      if not chunk:
        break
      head += chunk
  cut = head.find(b'\n', head.find(b'\n') + 1)
  return head[:cut + 1] if cut >= 0 else head


def read_identity(path: str) -> Optional[identity_lib.Identity]:
  """The identity an existing embedding file records (None for a file of the first format).

  Raises:
    errors.BadFilesError: ``path`` is not an embedding file (it is not changed).
  """
  try:
    return _split(path, _head(path))[0]
  except OSError as e:
    raise errors.BadFilesError(f'{path}: cannot read it ({e.strerror}).') from None


def read_embeddings(path: str) -> Index:
  """Reads an embedding file written by ``python -m scfa_jax.tools.embed``: names, labels, [N, D] features, identity.

  A cut-off last line (a killed run) is left out; the file is not changed.

  Raises:
    errors.MissingFilesError: no such file.
    errors.BadFilesError: not an embedding file, or a malformed row (named by its line number).
  """
  if not os.path.isfile(path):
    raise errors.MissingFilesError(f'{path}: no such embedding file; write one with python -m scfa_jax.tools.embed.')
  data = _read(path)
  found, header, lines, _ = _split(path, data)
  if not header:
    raise _not_ours(path) if found is None else errors.BadFilesError(f'{path} holds no embedding yet.')
  first = 3 if found is not None else 2
  rows = list(csv.reader(io.StringIO(b'\n'.join(lines).decode())))
  for number, row in enumerate(rows, first):
    if len(row) != len(header):
      raise errors.BadFilesError(f'{path}, line {number}: {len(row)} columns where the header has {len(header)}; '
                                 'the file was edited or damaged: embed into a new --out.')
  features = np.asarray([r[2:] for r in rows], np.float32).reshape(len(rows), len(header) - 2)
  return Index(names=[r[0] for r in rows], labels=[r[1] for r in rows], features=features, identity=found)


def load(path: str) -> Index:
  """:func:`read_embeddings`, refusing a file without any row (what ``search --index`` needs)."""
  table = read_embeddings(path)
  if not table.names:
    raise errors.BadFilesError(f'{path} holds no embedding; embed some videos into it first.')
  return table


def finished(path: str) -> set[str]:
  """The videos (``video`` column) already in an embedding file; empty when there is none."""
  if not os.path.isfile(path) or os.path.getsize(path) == 0:
    return set()
  return set(read_embeddings(path).names)


class Writer:
  """Appends rows to an embedding file of one model (``identity``, with its ``dim``).

  An existing file is checked before anything is written: not an embedding
  file, or one of another model, is refused and left as it was. Only then is a
  cut-off last line (a killed run) removed. Each row is flushed as it is
  written and fsynced every ``SYNC_EVERY_S`` seconds and at :meth:`close`.
  """

  def __init__(self, path: str, identity: identity_lib.Identity, *, fix: str = 'pass another --out.'):
    self.path, self.identity = path, identity
    try:
      if os.path.isfile(path) and os.path.getsize(path) > 0:
        data = _read(path)
        found, header, _, whole = _split(path, data)
        identity_lib.check(path, found, identity, fix=fix)
        if whole < len(data):
          with open(path, 'rb+') as f:
            f.truncate(whole)
        self._file = open(path, 'a', newline='', encoding='utf-8')
        if not header:  # killed between the identity line and the header
          csv.writer(self._file, lineterminator='\n').writerow(_header(identity.dim))
      else:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._file = open(path, 'w', newline='', encoding='utf-8')
        self._file.write(COMMENT + json.dumps(identity.to_json()) + '\n')
        csv.writer(self._file, lineterminator='\n').writerow(_header(identity.dim))
        self._sync()
    except OSError as e:
      raise errors.BadFilesError(f'{path}: cannot write the embeddings there ({e.strerror}); pass a writable '
                                 '--out.') from None
    self._synced = time.monotonic()

  def _sync(self) -> None:
    self._file.flush()
    os.fsync(self._file.fileno())
    self._synced = time.monotonic()

  def write(self, name: str, label: str, vector: np.ndarray) -> None:
    """One row, flushed (a kill after this returns keeps it)."""
    self._file.write(_row(name, label, vector))
    self._file.flush()
    if time.monotonic() - self._synced >= SYNC_EVERY_S:
      self._sync()

  def close(self) -> None:
    self._sync()
    self._file.close()


def _row(name: str, label: str, vector: np.ndarray) -> str:
  line = io.StringIO()
  csv.writer(line, lineterminator='\n').writerow([name, label] + [f'{x:.9g}' for x in np.asarray(vector, np.float32)])
  return line.getvalue()


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
