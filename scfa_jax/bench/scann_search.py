r"""ScaNN on ``bench search``'s rows, in a process of its own: the measurement behind keeping FAISS.

ScaNN (``pip install scann``, not an extra of this project) is measured with
the same clustered rows, queries and true neighbours as FAISS in
``bench.search``, with the same partitioning (``nlist`` leaves, ``nprobe``
searched), asymmetric hashing (2 dims a block, anisotropic threshold 0.2) and
exact re-ranking of the best ``--reorder`` (100: the configuration ScaNN's
README recommends). It runs in a child process because ScaNN 1.4's package
``__init__`` loads TensorFlow ops built for TensorFlow 2.20, which fail to load
next to this project's TensorFlow (an undefined absl symbol): the process hides
TensorFlow before importing ScaNN's pybind API, which needs none.

  python -m scfa_jax.bench.scann_search --rows=50000 --dim=2048 --clusters=1000 --queries=200 \
      --k=10 --nlist=224 --nprobe=16 --truth=/tmp/truth.npy
"""

import sys

sys.modules.setdefault('tensorflow', None)  # type: ignore[arg-type]  # ScaNN's __init__ then skips its TF ops

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import json
import resource
import time

import numpy as np

from scfa_jax.bench import search
from scfa_jax.evaluation import knn


def measure(rows: int, dim: int, clusters: int, queries: int, k: int, nlist: int, nprobe: int,
            truth: np.ndarray, reorder: int = 100) -> dict:
  """Build time, query latency, memory and recall@k of a ScaNN searcher over ``bench.search``'s rows."""
  from scann.scann_ops.py import scann_ops_pybind
  base = search.clustered(rows, dim, clusters, seed=1)
  asked = np.asarray(search.clustered(queries, dim, clusters, seed=2), np.float32)
  start = time.perf_counter()
  normalised = np.ascontiguousarray(knn.l2_normalize(np.asarray(base, np.float32)))  # ScaNN takes float32 rows
  del base
  searcher = (scann_ops_pybind.builder(normalised, k, 'dot_product')
              .tree(num_leaves=nlist, num_leaves_to_search=nprobe, training_sample_size=min(rows, 40 * nlist))
              .score_ah(2, anisotropic_quantization_threshold=0.2).reorder(reorder).build())
  build_s = time.perf_counter() - start
  asked = np.ascontiguousarray(knn.l2_normalize(asked))
  batch_s, (found, _) = search._best(lambda: searcher.search_batched(asked))  # pylint: disable=protected-access
  one_s, _ = search._best(lambda: searcher.search_batched(asked[:1]), repeats=5)  # pylint: disable=protected-access
  return {'rows': rows, 'scann_reorder': reorder, 'scann_build_s': round(build_s, 2),
          'scann_query_ms': round(1e3 * one_s, 3),
          'scann_batch_ms_per_query': round(1e3 * batch_s / len(asked), 4),
          f'scann_recall@{k}': round(search.recall(np.asarray(found), truth), 4),
          'scann_peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  for name in ('rows', 'dim', 'clusters', 'queries', 'k', 'nlist', 'nprobe'):
    parser.add_argument(f'--{name}', type=int, required=True)
  parser.add_argument('--reorder', type=int, default=100, help='candidates re-scored exactly')
  parser.add_argument('--truth', required=True, help='.npy of the exact neighbours [queries, k]')
  a = parser.parse_args()
  truth = np.load(a.truth)
  print(json.dumps(measure(a.rows, a.dim, a.clusters, a.queries, a.k, a.nlist, a.nprobe, truth, a.reorder)))


if __name__ == '__main__':
  main()
