"""Approximate nearest neighbours over an embedding index (FAISS, the ``ann`` extra), for indexes too big to scan.

Exact search (``inference.index.nearest``) reads every row per query batch: at
a few hundred thousand rows of 2048 dims that is seconds per query. FAISS's
inverted-file index (``IndexIVFScalarQuantizer``, float16 storage) clusters the
rows once (k-means on a sample) and a query scans only the ``nprobe`` nearest
of ``nlist`` clusters; on clustered synthetic vectors of 2048 dims ``bench
search`` measures recall@10 of 0.99-1.0 against exact search from 50k rows at
the defaults below (docs/scale.md has the table and the size where it starts
to pay: ``EXACT_BELOW``). Vectors are L2-normalised, so inner product = cosine,
the similarity exact search reports. FAISS, not ScaNN: it installs as one
wheel on Linux and macOS and runs on CPU and GPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import time
from typing import Optional, Sequence

import numpy as np

from scfa_jax import errors
from scfa_jax import storage
from scfa_jax.evaluation import knn

EXACT_BELOW = 50_000  # Rows from which FAISS pays and keeps recall@10 >= 0.99 (bench search; docs/scale.md).
DEFAULT_NPROBE_FRACTION = 1 / 16  # Share of the clusters a query scans ...
MIN_NPROBE = 16  # ... but at least this many (small indexes have few, coarse clusters).
_KMEANS_ITERATIONS = 10  # FAISS's default is 25; 10 cost 2.5x less to build at the same recall (bench search).


def _faiss():
  try:
    import faiss  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise errors.MissingDependencyError('Approximate search needs FAISS: pip install "scfa_jax[ann]".') from None
  return faiss


@dataclasses.dataclass
class AnnIndex:
  """A trained FAISS index and how it searches."""

  index: object
  nprobe: int
  build_seconds: float = 0.0

  def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices [Q, k], cosine similarities [Q, k]), best first, as ``inference.index.nearest`` returns."""
    self.index.nprobe = self.nprobe
    sims, ids = self.index.search(np.ascontiguousarray(knn.l2_normalize(queries), np.float32), k)
    return ids.astype(np.int64), sims


def nlist_for(n: int) -> int:
  """Clusters for ``n`` rows: ~sqrt(n) (cheap to train on 2 cores), at least 1, at most n // 39 (k-means needs rows)."""
  return max(1, min(round(math.sqrt(n)), n // 39))


def build(features: np.ndarray, *, nlist: Optional[int] = None, nprobe: Optional[int] = None,
          chunk: int = 16384, train_size: Optional[int] = None, seed: int = 0) -> AnnIndex:
  """Builds an IVF index with float16 storage over ``features`` [N, D] (normalised chunk by chunk)."""
  faiss = _faiss()
  start = time.perf_counter()
  n, dim = features.shape
  nlist = nlist or nlist_for(n)
  quantizer = faiss.IndexFlatIP(dim)
  index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_fp16,
                                        faiss.METRIC_INNER_PRODUCT)
  index.cp.niter = _KMEANS_ITERATIONS
  train_size = min(n, train_size or 40 * nlist)
  sample = np.random.default_rng(seed).choice(n, train_size, replace=False) if train_size < n else np.arange(n)
  index.train(np.ascontiguousarray(knn.l2_normalize(np.asarray(features[np.sort(sample)], np.float32))))
  for lo in range(0, n, chunk):
    index.add(np.ascontiguousarray(knn.l2_normalize(np.asarray(features[lo:lo + chunk], np.float32))))
  nprobe = nprobe or default_nprobe(nlist)
  return AnnIndex(index=index, nprobe=min(nprobe, nlist), build_seconds=time.perf_counter() - start)


def default_nprobe(nlist: int) -> int:
  return min(nlist, max(MIN_NPROBE, round(nlist * DEFAULT_NPROBE_FRACTION)))


def fingerprint(names: Sequence[str], dim: int) -> str:
  """Identifies an index's rows (names in order and dimension): a saved ANN index is reused only for them."""
  digest = hashlib.sha256(str(dim).encode())
  for name in names:
    digest.update(name.encode() + b'\0')
  return digest.hexdigest()[:16]


def cache_prefix(index_path: Optional[str]) -> Optional[str]:
  """Where the ANN index of an embedding file is saved: ``<folder>/_ann.*`` or ``<file>.ann.*`` (None: not saved).

  An index in object storage is not cached: FAISS writes local files only.
  """
  if not index_path or storage.is_remote(index_path):
    return None
  return os.path.join(index_path, '_ann') if os.path.isdir(index_path) else index_path + '.ann'


def load_or_build(cache_path: str, names: Sequence[str], features: np.ndarray) -> AnnIndex:
  """The ANN index of these rows: read from ``cache_path`` when it was built for them, else built and saved there."""
  faiss = _faiss()
  key = fingerprint(names, features.shape[1])
  stored = f'{cache_path}.{key}.faiss'
  if os.path.isfile(stored):
    index = faiss.read_index(stored)
    return AnnIndex(index=index, nprobe=default_nprobe(index.nlist))
  built = build(features)
  logging.info('Built an approximate index of %d rows in %.1f s; saving it as %s.', len(names),
               built.build_seconds, stored)
  try:
    faiss.write_index(built.index, stored)
  except RuntimeError as e:  # A read-only index folder: search still works, the next one builds again.
    logging.warning('Cannot save the approximate index to %s (%s); it is rebuilt next time.', stored, e)
  return built


def nearest(features: np.ndarray, queries: np.ndarray, *, k: int, method: str = 'auto',
            names: Optional[Sequence[str]] = None, cache_path: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
  """Exact or approximate search: 'exact', 'faiss', or 'auto' (FAISS from ``EXACT_BELOW`` rows when installed)."""
  from scfa_jax.inference import index as index_lib  # pylint: disable=g-import-not-at-top
  if method not in ('auto', 'exact', 'faiss'):
    raise errors.ConfigError(f'--search={method!r} is not allowed: expected auto, exact or faiss.')
  if method == 'auto':
    method = 'exact'
    if len(features) >= EXACT_BELOW:  # only then is FAISS imported (a small index never pays for it)
      try:
        _faiss()
        method = 'faiss'
      except errors.MissingDependencyError:
        pass
  if method == 'exact':
    return index_lib.nearest(features, queries, k=k)
  k = min(k, len(features))
  if cache_path and names is not None:
    ann = load_or_build(cache_path, names, features)
  else:
    ann = build(features)
  return ann.search(queries, k)
