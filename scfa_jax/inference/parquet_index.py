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

Resuming: a folder gains one part file per run (the Beam pipeline's shards, or
``Writer``'s ``part-<time>.parquet``) and each part is written to a temporary
name and renamed when complete, so an interrupted run leaves no partial file
and the next run skips the videos of the complete ones. A single ``.parquet``
file is rewritten whole when a run closes.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Iterable, Optional

import numpy as np

from scfa_jax import errors
from scfa_jax.inference import identity as identity_lib
from scfa_jax.inference import index as csv_index

IDENTITY_KEY = b'scfa_jax.model'
SUFFIX = '.parquet'


def is_parquet(path: str) -> bool:
  """Whether ``path`` names Parquet embeddings: a ``.parquet`` file, or a folder (existing, or ending in '/')."""
  return path.rstrip('/').endswith(SUFFIX) or path.endswith('/') or _isdir(path)


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
  """The complete Parquet files of ``path`` (a file, or a folder's ``*.parquet``), sorted."""
  if _isdir(path):
    return sorted(os.path.join(path, p) for p in _listdir(path) if p.endswith(SUFFIX) and not p.startswith('.'))
  return [path] if _exists(path) else []


def identity_of(path: str) -> Optional[dict[str, Any]]:
  """The model identity recorded in the first file of ``path`` (None when there is none)."""
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  for name in files(path):
    meta = pq.read_schema(_open(name)).metadata or {}
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
  """All rows of ``path``'s files as one arrow table (a file cut off by a crash fails with its name)."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  tables = []
  for name in files(path):
    try:
      tables.append(pq.read_table(_open(name), columns=columns))
    except (pa.ArrowInvalid, OSError) as e:
      raise errors.BadFilesError(f'{name}: not a readable Parquet file ({e}); delete it and embed again.') from None
  return pa.concat_tables(tables, promote_options='permissive') if tables else None


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
  """Writes embeddings to ``path`` with the model's identity: a single file, or a new part of a folder.

  The same ``write(rows)`` / ``close()`` as ``inference.index.Writer``.
  """

  def __init__(self, path: str, dim: int, identity: dict[str, Any]):
    import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
    check_identity(path, identity)
    self._single = path.rstrip('/').endswith(SUFFIX) and not _isdir(path)
    self._final = path if self._single else os.path.join(path, f'part-{time.strftime("%Y%m%d-%H%M%S")}-{os.getpid()}{SUFFIX}')
    self._tmp = os.path.join(os.path.dirname(self._final) or '.', '.' + os.path.basename(self._final) + '.incomplete')
    self._schema = schema(dim, identity, top_k=False)
    try:
      os.makedirs(os.path.dirname(os.path.abspath(self._final)), exist_ok=True)
      self._writer = pq.ParquetWriter(self._tmp, self._schema)
    except OSError as e:
      raise errors.BadFilesError(f'{path}: cannot write the embeddings there ({e}); pass a writable --out.') from None
    if self._single and os.path.exists(path):  # A single file grows by being rewritten with its old rows first.
      old = read_table(path)
      self._writer.write_table(old.select(self._schema.names).cast(self._schema))

  def write(self, rows: Iterable[tuple[str, str, np.ndarray]]) -> None:
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    rows = list(rows)
    self._writer.write_table(pa.table({
        'video': [r[0] for r in rows], 'label': [r[1] for r in rows],
        'embedding': [np.asarray(r[2], np.float32) for r in rows]}, schema=self._schema))

  def close(self) -> None:
    self._writer.close()
    os.replace(self._tmp, self._final)


def writer_for(path: str, dim: int, predictor: Any):
  """The embedding writer ``path`` asks for: Parquet (``.parquet`` or a folder) or CSV."""
  if is_parquet(path):
    return Writer(path, dim, model_identity(predictor, dim))
  return csv_index.Writer(path, dim)


def finished_in(path: str) -> set[str]:
  """The videos already in ``path``, whichever format it has."""
  return finished(path) if is_parquet(path) else csv_index.finished(path)


def load_any(path: str) -> csv_index.Index:
  """Reads an embedding file of either format."""
  return load(path) if is_parquet(path) else csv_index.load(path)


# Local paths through os, object storage (gs://, s3://) through Beam's or TF's file systems.
def _isdir(path: str) -> bool:
  if '://' in path:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.isdir(path)
  return os.path.isdir(path)


def _exists(path: str) -> bool:
  if '://' in path:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.exists(path)
  return os.path.exists(path)


def _listdir(path: str) -> list[str]:
  if '://' in path:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return [p.rstrip('/') for p in tf.io.gfile.listdir(path)]
  return os.listdir(path)


def _open(path: str):
  if '://' in path:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.GFile(path, 'rb')
  return path
