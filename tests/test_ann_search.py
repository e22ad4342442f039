"""Approximate search (FAISS): recall against exact search, cosine similarities, the saved index and when it is used."""

import importlib.util
import os

import numpy as np
import pytest

from scfa_jax.bench import search as bench_search
from scfa_jax.inference import index as index_lib

ann = pytest.importorskip('scfa_jax.inference.ann')
pytest.importorskip('faiss')


@pytest.fixture(scope='module')
def vectors():
  base = np.asarray(bench_search.clustered(4000, 64, 40, seed=1), np.float32) * 3.0  # Not unit length.
  queries = np.asarray(bench_search.clustered(50, 64, 40, seed=2), np.float32)
  return base, queries


def test_faiss_recall_and_cosine_similarities(vectors):
  base, queries = vectors
  truth, exact_sims = index_lib.nearest(base, queries, k=10)
  built = ann.build(base)
  found, sims = built.search(queries, 10)
  assert bench_search.recall(found, truth) >= 0.95
  # Cosine similarities as exact search reports them (float16 storage: to 1e-3).
  np.testing.assert_allclose(sims[:, 0], exact_sims[:, 0], atol=2e-3)


def test_auto_switches_at_the_threshold_and_reuses_the_saved_index(vectors, tmp_path, monkeypatch):
  base, queries = vectors
  names = [f'v{i}' for i in range(len(base))]
  prefix = str(tmp_path / 'emb.parquet.ann')
  monkeypatch.setattr(ann, 'EXACT_BELOW', len(base) + 1)
  ann.nearest(base, queries, k=5, names=names, cache_path=prefix)
  assert not os.listdir(tmp_path)  # Below the threshold: exact, nothing built.
  monkeypatch.setattr(ann, 'EXACT_BELOW', len(base))
  ids, _ = ann.nearest(base, queries, k=5, names=names, cache_path=prefix)
  saved = os.listdir(tmp_path)
  assert len(saved) == 1 and saved[0].endswith('.faiss')
  again, _ = ann.nearest(base, queries, k=5, names=names, cache_path=prefix)
  np.testing.assert_array_equal(ids, again)
  ann.nearest(base[:-1], queries, k=5, method='faiss', names=names[:-1], cache_path=prefix)  # Other rows: another saved index.
  assert len(os.listdir(tmp_path)) == 2
  with pytest.raises(ann.errors.ConfigError, match="--search='fast'"):
    ann.nearest(base, queries, k=5, method='fast')


def test_the_benchmark_reports_scann_beside_faiss_or_why_it_could_not():
  """bench search's ScaNN column comes from a child process on the same rows; without ScaNN, its error line."""
  row = bench_search.measure(np.asarray(bench_search.clustered(2000, 16, 20, seed=1), np.float16),
                             np.asarray(bench_search.clustered(20, 16, 20, seed=2), np.float32), 5,
                             scann={'dim': 16, 'clusters': 20, 'reorder': 50})
  assert row['rows'] == 2000 and row['recall@5'] >= 0.9
  if importlib.util.find_spec('scann') is not None:  # installed (its import may fail beside our TensorFlow)
    assert row['scann_recall@5'] >= 0.5 and row['scann_reorder'] == 50
  else:
    assert "No module named 'scann'" in row['scann_error'], row
  table = bench_search.format_table({'synthetic': [row, {'rows': 1, 'dim': 16}], 'real': None})
  assert 'scann' in table.splitlines()[0] and table.splitlines()[-1].endswith('-')  # keys of every row, '-' if absent
