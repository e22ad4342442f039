r"""``python -m scfa_jax.bench search``: approximate (FAISS IVF, float16) against exact search, recall and speed.

On clustered synthetic vectors (``--search_sizes`` rows of ``--search_dim``
dims: ``--search_clusters`` Gaussian clusters, like the class structure of
real embeddings) and, with ``--search_index``, on a real embedding file, it
reports per size: build time, memory of each index, query latency (one query,
and per query in a batch) and recall@10 of FAISS against exact search over the
same rows. Base vectors are held in float16 (half of float32's memory; exact
search converts chunk by chunk), the way large indexes are stored. The queries
are held-out points of the same clusters. The last line is JSON.

  nice -n 10 python -m scfa_jax.bench search --search_sizes=10000,100000,500000 --search_dim=2048

With ``--search_scann_sizes`` (a subset of the sizes) ScaNN is measured on the
same rows, queries and true neighbours (``bench.scann_search``).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

import numpy as np
from absl import flags

from scfa_jax.evaluation import knn
from scfa_jax.inference import ann
from scfa_jax.inference import index as index_lib

flags.DEFINE_list('search_sizes', ['10000', '100000'], 'bench search: index sizes (rows) to measure.')
flags.DEFINE_integer('search_dim', 2048, 'bench search: embedding dimension of the synthetic vectors.')
flags.DEFINE_integer('search_clusters', 1000, 'bench search: clusters of the synthetic vectors.')
flags.DEFINE_integer('search_queries', 200, 'bench search: queries per size.')
flags.DEFINE_integer('search_k', 10, 'bench search: neighbours (recall@k).')
flags.DEFINE_string('search_index', None, 'bench search: also measure on this embedding file (CSV or Parquet).')
flags.DEFINE_list('search_scann_sizes', [], 'bench search: of --search_sizes, those where ScaNN is measured too '
                  '(pip install scann; a child process, bench.scann_search).')
flags.DEFINE_integer('search_scann_reorder', 100, 'bench search: candidates ScaNN re-scores exactly.')


def clustered(n: int, dim: int, clusters: int, seed: int, chunk: int = 50_000) -> np.ndarray:
  """[n, dim] float16 points around ``clusters`` random centres (noise of the centres' scale), made chunk-wise."""
  centres = np.random.default_rng(0).standard_normal((clusters, dim), np.float32)
  out = np.empty((n, dim), np.float16)
  rng = np.random.default_rng(seed)
  for lo in range(0, n, chunk):
    m = min(chunk, n - lo)
    out[lo:lo + m] = centres[rng.integers(0, clusters, m)] + rng.standard_normal((m, dim), np.float32)
  return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
  """Share of the true k neighbours among the k found, averaged over queries."""
  return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def _best(fn, repeats: int = 2) -> tuple[float, Any]:
  best, out = float('inf'), None
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn()
    best = min(best, time.perf_counter() - start)
  return best, out


class _Float32Rows:
  """float16 rows that exact search reads as float32, one chunk at a time (numpy's float16 arithmetic is slow)."""

  def __init__(self, rows: np.ndarray):
    self.rows = rows

  def __len__(self) -> int:
    return len(self.rows)

  def __getitem__(self, key) -> np.ndarray:
    return np.asarray(self.rows[key], np.float32)


def measure(base: np.ndarray, queries: np.ndarray, k: int, scann: Optional[dict[str, int]] = None) -> dict[str, Any]:
  """Exact and FAISS search over ``base``: timings (s), memory (MB), recall@k; ScaNN's too with ``scann``
  (how ``base`` was made: ``dim`` and ``clusters``, for :func:`scann_search`)."""
  rows = _Float32Rows(base)
  exact_batch_s, (truth, _) = _best(lambda: index_lib.nearest(rows, queries, k=k, chunk=16384), repeats=1)
  exact_one_s, _ = _best(lambda: index_lib.nearest(rows, queries[:1], k=k, chunk=16384))
  built = ann.build(base)
  ann_batch_s, (found, _) = _best(lambda: built.search(queries, k))
  ann_one_s, _ = _best(lambda: built.search(queries[:1], k), repeats=5)
  n, dim = base.shape
  faiss_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
  other = scann_search(truth, rows=n, queries=len(queries), k=k, nlist=int(built.index.nlist), nprobe=built.nprobe,
                       **scann) if scann else {}
  return {
      'rows': n, 'dim': dim, 'nlist': int(built.index.nlist), 'nprobe': built.nprobe,
      f'recall@{k}': round(recall(found, truth), 4),
      'faiss_build_s': round(built.build_seconds, 2),
      'exact_query_ms': round(1e3 * exact_one_s, 2), 'faiss_query_ms': round(1e3 * ann_one_s, 3),
      'exact_batch_ms_per_query': round(1e3 * exact_batch_s / len(queries), 3),
      'faiss_batch_ms_per_query': round(1e3 * ann_batch_s / len(queries), 4),
      'base_fp16_mb': round(base.nbytes / 2**20), 'faiss_mb': round(n * (2 * dim + 8) / 2**20),
      'peak_rss_mb': faiss_rss_mb, **other,
  }


def scann_search(truth: np.ndarray, **args: int) -> dict[str, Any]:
  """ScaNN's figures on the same rows, queries and true neighbours, from a child process (``bench.scann_search``)."""
  with tempfile.TemporaryDirectory() as folder:
    np.save(os.path.join(folder, 'truth.npy'), truth)
    done = subprocess.run([sys.executable, '-m', 'scfa_jax.bench.scann_search', f'--truth={folder}/truth.npy']
                          + [f'--{name}={value}' for name, value in args.items()],
                          capture_output=True, text=True, check=False)
  if done.returncode:
    lines = done.stderr.strip().splitlines()
    return {'scann_error': lines[-1] if lines else f'exit {done.returncode}'}
  return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> dict[str, Any]:
  f = flags.FLAGS
  results = {'synthetic': [], 'real': None}
  for size in (int(s) for s in f.search_sizes):
    base = clustered(size, f.search_dim, f.search_clusters, seed=1)
    queries = np.asarray(clustered(f.search_queries, f.search_dim, f.search_clusters, seed=2), np.float32)
    scann = ({'dim': f.search_dim, 'clusters': f.search_clusters, 'reorder': f.search_scann_reorder}
             if str(size) in f.search_scann_sizes else None)
    results['synthetic'].append(measure(base, queries, f.search_k, scann))
    print(results['synthetic'][-1], flush=True)
    del base
  if f.search_index:
    from scfa_jax.inference import parquet_index  # pylint: disable=g-import-not-at-top
    found = parquet_index.load_any(f.search_index)
    features = knn.l2_normalize(found.features)
    results['real'] = {'file': f.search_index, **measure(features, features[:f.search_queries], f.search_k)}
  return results


def format_table(results: dict[str, Any]) -> str:
  rows = results['synthetic'] + ([results['real']] if results['real'] else [])
  keys = list(dict.fromkeys(k for r in rows for k in r if k != 'file'))
  lines = [' | '.join(keys), ' | '.join('---' for _ in keys)]
  lines += [' | '.join(str(r.get(k, '-')) for k in keys) for r in rows]
  return '\n'.join(lines)
