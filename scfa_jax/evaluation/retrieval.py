"""Video retrieval: test videos as queries against the train split, ranked by cosine similarity.

A retrieved train video is relevant when it has the query's class. Videos of
equal similarity (a collapsed encoder gives many) form one step of the
precision-recall curve, as in scikit-learn's ``average_precision_score``, so
mAP does not depend on the order of the train split; recall@k takes ties in
that order (a stable sort).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from scfa_jax.evaluation import knn


def relevance_of_ranking(memory: np.ndarray, memory_labels: np.ndarray, queries: np.ndarray,
                         query_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """[Q, N] bool: whether each query's r-th most similar memory item has its class; and [Q, N] their similarities."""
  sims = knn.l2_normalize(queries) @ knn.l2_normalize(memory).T
  order = np.argsort(-sims, axis=1, kind='stable')
  return np.asarray(memory_labels)[order] == np.asarray(query_labels)[:, None], np.take_along_axis(sims, order, 1)


def average_precision(relevance: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
  """AP of each ranked row [Q]: mean of precision@r over the ranks r of the relevant items.

  With ``scores`` (each row's similarities, descending), a run of equal scores
  counts as one rank: each of its relevant items gets the precision at the
  run's end, which is what ``sklearn.metrics.average_precision_score`` gives.
  Rows without any relevant item have no AP and give NaN.
  """
  relevance = np.asarray(relevance, bool)
  hits = np.cumsum(relevance, axis=1)
  precision = hits / np.arange(1, relevance.shape[1] + 1)
  if scores is not None:
    n = relevance.shape[1]
    run_ends = np.concatenate([scores[:, 1:] != scores[:, :-1], np.ones((len(scores), 1), bool)], axis=1)
    # For every rank, the last rank of its run of equal scores.
    end_of_run = np.minimum.accumulate(np.where(run_ends, np.arange(n), n)[:, ::-1], axis=1)[:, ::-1]
    precision = np.take_along_axis(precision, end_of_run, 1)
  num_relevant = relevance.sum(axis=1)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(num_relevant > 0, (precision * relevance).sum(axis=1) / num_relevant, np.nan)


def why_unscorable(memory_labels: np.ndarray, query_labels: np.ndarray,
                   class_names: Optional[Sequence[str]] = None) -> Optional[str]:
  """Why no query can be scored (no test video's class is in the train split), or None if some can.

  Recall@k and mAP are then undefined, not zero: evaluation reports the
  protocol as null with this reason.
  """
  query_labels = np.asarray(query_labels)
  if np.isin(query_labels, memory_labels).any():
    return None
  if not len(query_labels):
    return 'the test split gave no video to query with'
  absent = [class_names[int(c)] if class_names is not None else str(c) for c in np.unique(query_labels)]
  return (f'no test video has a class of the train split (test classes {", ".join(absent)} are absent from it), '
          'so no query can retrieve anything')


def retrieval_metrics(memory: np.ndarray, memory_labels: np.ndarray, queries: np.ndarray, query_labels: np.ndarray,
                      *, ks: Sequence[int] = (1, 5, 10), chunk: int = 512) -> dict[str, Optional[float]]:
  """Recall@k and mAP of retrieving same-class train videos for every test video.

  Recall@k is the fraction of queries with at least one same-class video among
  their k nearest train videos (the "top-k retrieval accuracy" of the video
  self-supervised literature); mAP is the mean, over queries, of the average
  precision of the full ranking of the train split. Queries whose class has no
  train video can retrieve nothing and are left out of both; when that leaves
  none, both are undefined and given as None (:func:`why_unscorable` says why).

  Returns:
    {'recall@k': ... for each k, 'map': ..., 'num_queries': counted queries}.
  """
  queries, query_labels = np.asarray(queries), np.asarray(query_labels)
  keep = np.isin(query_labels, memory_labels)
  queries, query_labels = queries[keep], query_labels[keep]
  hits = {k: 0 for k in ks}
  ap_sum = 0.0
  for start in range(0, len(queries), chunk):  # [chunk, N] at a time: memory stays bounded on large splits
    relevance, sims = relevance_of_ranking(memory, memory_labels, queries[start:start + chunk],
                                           query_labels[start:start + chunk])
    for k in ks:
      hits[k] += int(relevance[:, :k].any(axis=1).sum())
    ap_sum += float(average_precision(relevance, sims).sum())
  n = len(queries)
  results: dict[str, Optional[float]] = {f'recall@{k}': hits[k] / n if n else None for k in ks}
  results['map'] = ap_sum / n if n else None
  results['num_queries'] = int(len(queries))
  return results
