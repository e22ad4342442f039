"""Embedding files in Parquet: one file, or a folder of part files (what the Beam embedding writes).

Parquet beside the CSV of ``inference.index`` for millions of videos: columnar,
compressed, read by pandas, DuckDB, Spark and BigQuery straight from object
storage, and splittable into the shards that many workers write at once.
Columns: ``video`` (path), ``label`` (a class name or empty), ``embedding``
(float32 list of D) and, when the model has a classification head,
``top_classes`` / ``top_probabilities``. Every file carries the model's identity
in its key-value metadata (``scfa_jax.model``: workdir, step, config
fingerprint, dimension, views), so an index never mixes models: appending to a
file or folder of another model is refused.

Resuming: every part file is written to a temporary name and renamed when
complete, so no reader ever sees a partial file. ``Writer`` commits what it has
embedded as a small part every ``COMMIT_EVERY_S`` seconds (into the folder, or
for a single ``.parquet`` file into the hidden folder beside it,
``.<name>.parts``), so a killed run loses at most those seconds; closing merges
the run's parts into one file (a single file is rewritten whole with them).
Readers see the committed parts too, and keep the first row of a video that a
crash in the middle of a merge left twice.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from typing import Any, Optional

import numpy as np

from scfa_jax import errors
from scfa_jax import storage
from scfa_jax.inference import identity as identity_lib
from scfa_jax.inference import index as csv_index

IDENTITY_KEY = b'scfa_jax.model'
SUFFIX = '.parquet'
COMMIT_EVERY_S = 10.0  # a killed run loses at most this much embedding work


def is_parquet(path: str) -> bool:
  """Whether ``path`` names Parquet embeddings: a ``.parquet`` file, or a folder (existing, or ending in '/')."""
  return path.rstrip('/').endswith(SUFFIX) or path.endswith('/') or storage.isdir(path)


def model_identity(predictor: Any, dim: int) -> dict[str, Any]:
  """What makes two embeddings comparable (``inference.identity``: the same record as the CSV files carry)."""
  return identity_lib.of_predictor(predictor, dim=dim).to_json()


def schema(dim: int, identity: dict[str, Any], *, top_k: bool):
  """The arrow schema of an embedding file (the identity as its metadata)."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  fields = [('video', pa.string()), ('label', pa.string()), ('embedding', pa.list_(pa.float32(), dim))]
  if top_k:
    fields += [('top_classes', pa.list_(pa.string())), ('top_probabilities', pa.list_(pa.float32()))]
  return pa.schema(fields, metadata={IDENTITY_KEY: json.dumps(identity, sort_keys=True).encode()})


def files(path: str) -> list[str]:
  """The complete Parquet files of ``path``: a folder's ``*.parquet``, or a file and its committed parts."""
  if storage.isdir(path):
    return _parts(path)
  return ([path] if storage.exists(path) else []) + _parts(sidecar(path))


def sidecar(path: str) -> str:
  """Where a run appending to the single file ``path`` commits its parts until it closes."""
  head, name = os.path.split(path.rstrip('/'))
  return os.path.join(head, f'.{name}.parts')


def _parts(folder: str) -> list[str]:
  if not storage.isdir(folder):
    return []
  names = storage.listdir(folder)
  return sorted(os.path.join(folder, p) for p in names if p.endswith(SUFFIX) and not p.startswith('.'))


def identity_of(path: str) -> Optional[dict[str, Any]]:
  """The model identity recorded in the first file of ``path`` (None when there is none)."""
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  for name in files(path):
    with storage.reading(name) as source:
      meta = pq.read_schema(source).metadata or {}
    if IDENTITY_KEY in meta:
      return json.loads(meta[IDENTITY_KEY])
  return None


def check_identity(path: str, identity: dict[str, Any]) -> None:
  """Refuses to add one model's embeddings to an index of another (one line naming the file and both models)."""
  found = identity_of(path)
  if found is not None:
    identity_lib.check(path, identity_lib.Identity.from_json(found), identity_lib.Identity.from_json(identity),
                       fix='pass another output, or delete it to start over.')


def read_table(path: str, columns: Optional[list[str]] = None):
  """All rows of ``path``'s files as one arrow table, a video once (a file cut off by a crash fails with its name)."""
  return _read_files(files(path), columns)


def _read_files(names: list[str], columns: Optional[list[str]] = None):
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  tables = []
  for name in names:
    try:
      with storage.reading(name) as source:
        tables.append(pq.read_table(source, columns=columns))
    except (pa.ArrowInvalid, OSError) as e:
      raise errors.BadFilesError(f'{name}: not a readable Parquet file ({e}); delete it and embed again.') from None
  if not tables:
    return None
  table = pa.concat_tables(tables, promote_options='permissive')
  if columns is not None and 'video' not in columns:
    return table
  _, first = np.unique(np.asarray(table.column('video').to_pylist(), dtype=object), return_index=True)
  return table if len(first) == table.num_rows else table.take(np.sort(first))  # a merge cut off left duplicates


def finished(path: str) -> set[str]:
  """The videos already embedded in ``path``."""
  table = read_table(path, columns=['video'])
  return set() if table is None else set(table.column('video').to_pylist())


def load(path: str) -> csv_index.Index:
  """An ``inference.index.Index`` of ``path``'s rows (for search)."""
  table = read_table(path, columns=['video', 'label', 'embedding'])
  if table is None or not table.num_rows:
    raise errors.MissingFilesError(f'{path}: no embeddings there; write them with python -m scfa_jax.tools.embed '
                                   'or python -m scfa_jax.tools.embed_beam.')
  embedding = table.column('embedding').combine_chunks()
  dim = embedding.type.list_size if hasattr(embedding.type, 'list_size') else len(embedding[0])
  features = np.asarray(embedding.flatten().to_numpy(zero_copy_only=False), np.float32).reshape(-1, dim)
  return csv_index.Index(names=table.column('video').to_pylist(),
                         labels=[label or '' for label in table.column('label').to_pylist()], features=features)


class Writer:
  """Writes embeddings to ``path`` with the model's identity: a single file, or new parts of a folder.

  The same ``write(name, label, vector)`` / ``close()`` as ``inference.index.Writer``.
  Rows are committed as a part file at least every ``commit_every_s`` seconds (see
  the module docstring), so a kill loses at most that much work; :meth:`close`
  merges the run's parts.
  """

  def __init__(self, path: str, dim: int, identity: dict[str, Any], *, commit_every_s: float = COMMIT_EVERY_S):
    check_identity(path, identity)
    self._path = path
    self._single = path.rstrip('/').endswith(SUFFIX) and not storage.isdir(path)
    self._folder = sidecar(path) if self._single else path
    self._prefix = f'part-{time.strftime("%Y%m%d-%H%M%S")}-{uuid.uuid4().hex[:8]}'
    self._schema = schema(dim, identity, top_k=False)
    self._commit_every_s = commit_every_s
    self._rows: list[tuple[str, str, np.ndarray]] = []
    self._committed: list[str] = []  # this run's parts
    self._last_commit = time.monotonic()
    try:
      os.makedirs(self._folder, exist_ok=True)
    except OSError as e:
      raise errors.BadFilesError(f'{path}: cannot write the embeddings there ({e}); pass a writable --out.') from None

  def write(self, name: str, label: str, vector: np.ndarray) -> None:
    """One row, on disk within ``commit_every_s`` seconds (the next write or :meth:`close` commits it)."""
    self._rows.append((name, label, vector))
    if time.monotonic() - self._last_commit >= self._commit_every_s:
      self.commit()

  def commit(self) -> None:
    """Writes the rows since the last commit as a complete part file (nothing when there are none)."""
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    self._last_commit = time.monotonic()
    if not self._rows:
      return
    table = pa.table({'video': [r[0] for r in self._rows], 'label': [r[1] for r in self._rows],
                      'embedding': [np.asarray(r[2], np.float32) for r in self._rows]}, schema=self._schema)
    part = os.path.join(self._folder, f'{self._prefix}-{len(self._committed):05d}{SUFFIX}')
    self._write_whole(table, part)
    self._committed.append(part)
    self._rows = []

  def close(self) -> None:
    """Commits the rest, then merges: the single file with every committed part, or this run's parts into one."""
    self.commit()
    if self._single:
      if _parts(self._folder):  # this run's, or a killed run's
        self._write_whole(read_table(self._path).select(self._schema.names).cast(self._schema), self._path)
      shutil.rmtree(self._folder, ignore_errors=True)  # after the file holds its rows: a kill in between duplicates
    elif len(self._committed) > 1:
      merged = _read_files(self._committed)
      self._write_whole(merged.cast(self._schema), os.path.join(self._folder, f'{self._prefix}{SUFFIX}'))
      for part in self._committed:
        os.remove(part)

  def _write_whole(self, table, final: str) -> None:
    """``table`` into ``final`` through a hidden temporary name, renamed once complete."""
    import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
    tmp = os.path.join(os.path.dirname(final) or '.', '.' + os.path.basename(final) + '.incomplete')
    try:
      pq.write_table(table, tmp)
      os.replace(tmp, final)
    except OSError as e:
      raise errors.BadFilesError(f'{self._path}: cannot write the embeddings there ({e}); pass a writable '
                                 '--out.') from None


def finished_in(path: str) -> set[str]:
  """The videos already in ``path``, whichever format it has."""
  return finished(path) if is_parquet(path) else csv_index.finished(path)


def load_any(path: str) -> csv_index.Index:
  """Reads an embedding file of either format."""
  return load(path) if is_parquet(path) else csv_index.load(path)
