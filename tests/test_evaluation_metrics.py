"""Known-answer tests of the evaluation metrics on hand-made embeddings (pure numpy, no model)."""

import jsonschema
import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from scfa_jax import config as base_config
from scfa_jax.evaluation import evaluate
from scfa_jax.evaluation import finetune
from scfa_jax.evaluation import knn
from scfa_jax.evaluation import linear_probe
from scfa_jax.evaluation import metrics
from scfa_jax.evaluation import report
from scfa_jax.evaluation import retrieval
from scfa_jax.evaluation import schema


def _at_angles(degrees) -> np.ndarray:
  """Unit vectors in the plane at the given angles: cosine similarity to (1, 0) falls with the angle."""
  radians = np.deg2rad(np.asarray(degrees, float))
  return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def test_knn_votes_of_the_nearest_neighbours():
  memory = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1], [0, 0, 1]], float)
  memory_labels = np.array([0, 0, 1, 1, 2])
  queries = np.array([[1, 0.05, 0], [0.05, 1, 0], [0, 0.2, 1]], float)
  scores = knn.knn_scores(memory, memory_labels, queries, k=2, num_classes=3, temperature=0.1)
  np.testing.assert_array_equal(scores.argmax(1), [0, 1, 2])
  # The third query's two neighbours are item 4 (class 2) and item 3 (class 1); both vote, no one else does.
  assert scores[2, 0] == 0 and scores[2, 1] > 0 and scores[2, 2] > scores[2, 1]
  sims = knn.l2_normalize(queries[2:]) @ knn.l2_normalize(memory[[3, 4]]).T
  np.testing.assert_allclose(scores[2, 1:], np.exp(sims[0] / 0.1))


def test_knn_scale_invariance_is_cosine():
  rng = np.random.default_rng(0)
  memory, queries = rng.normal(size=(20, 5)), rng.normal(size=(6, 5))
  labels = rng.integers(0, 3, 20)
  a = knn.knn_scores(memory, labels, queries, k=4, num_classes=3)
  b = knn.knn_scores(memory * 7.0, labels, queries * 0.01, k=4, num_classes=3)
  np.testing.assert_allclose(a, b)


def test_retrieval_known_ranking():
  # The query (angle 0) ranks the memory by angle: labels a, b, a, b -> relevance 1, 0, 1, 0.
  memory = _at_angles([30, 0, 20, 10])  # stored out of order on purpose
  memory_labels = np.array([1, 0, 0, 1])  # by rank: 0 (0 deg), 1 (10), 0 (20), 1 (30)
  query, query_label = _at_angles([0]), np.array([0])
  found = retrieval.retrieval_metrics(memory, memory_labels, query, query_label, ks=(1, 2, 3))
  assert found['recall@1'] == 1.0 and found['recall@2'] == 1.0
  assert found['map'] == pytest.approx((1 / 1 + 2 / 3) / 2)
  # The class-1 query finds its first match at rank 2.
  found = retrieval.retrieval_metrics(memory, memory_labels, query, np.array([1]), ks=(1, 2))
  assert found['recall@1'] == 0.0 and found['recall@2'] == 1.0
  assert found['map'] == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_retrieval_map_matches_a_direct_computation():
  rng = np.random.default_rng(1)
  memory, queries = rng.normal(size=(40, 8)), rng.normal(size=(15, 8))
  memory_labels, query_labels = rng.integers(0, 4, 40), rng.integers(0, 4, 15)
  found = retrieval.retrieval_metrics(memory, memory_labels, queries, query_labels, ks=(1, 5, 10), chunk=4)
  sims = knn.l2_normalize(queries) @ knn.l2_normalize(memory).T
  direct_ap = [sk_metrics.average_precision_score(memory_labels == y, s) for y, s in zip(query_labels, sims)]
  assert found['map'] == pytest.approx(np.mean(direct_ap))
  for k in (1, 5, 10):
    top = np.argsort(-sims, axis=1)[:, :k]
    assert found[f'recall@{k}'] == pytest.approx(np.mean((memory_labels[top] == query_labels[:, None]).any(1)))
  assert found['num_queries'] == 15


@pytest.mark.parametrize('collapsed', [True, False])
def test_retrieval_map_averages_over_exact_ties_as_scikit_learn_does(collapsed):
  """Equal similarities must not be ranked by train-split order (a class-sorted split would inflate mAP)."""
  rng = np.random.default_rng(3)
  memory_labels = np.repeat([0, 1, 2], [3, 4, 5])  # stored sorted by class, as many splits are
  # Axis-aligned train embeddings make the cosine similarities exact, so the ties are exact too:
  # all one vector (a collapsed encoder), or four groups of identical vectors across the classes.
  groups = np.zeros(12, int) if collapsed else np.arange(12) % 4
  memory = np.eye(4)[groups]
  queries, query_labels = np.abs(rng.normal(size=(9, 4))), np.array([0, 1, 2] * 3)
  found = retrieval.retrieval_metrics(memory, memory_labels, queries, query_labels, ks=(1,))
  sims = knn.l2_normalize(queries) @ knn.l2_normalize(memory).T
  expected = np.mean([sk_metrics.average_precision_score(memory_labels == y, s) for y, s in zip(query_labels, sims)])
  assert found['map'] == pytest.approx(expected, abs=1e-12)
  if collapsed:  # every query ties with the whole split: AP is the share of its class
    assert found['map'] == pytest.approx(np.mean([3 / 12, 4 / 12, 5 / 12]))


def test_retrieval_skips_queries_that_cannot_be_answered():
  memory, memory_labels = _at_angles([0, 45]), np.array([0, 1])
  found = retrieval.retrieval_metrics(memory, memory_labels, _at_angles([5, 50]), np.array([0, 2]), ks=(1,))
  assert found == {'recall@1': 1.0, 'map': 1.0, 'num_queries': 1}
  none = retrieval.retrieval_metrics(memory, memory_labels, _at_angles([5, 50]), np.array([2, 2]), ks=(1, 5))
  assert none == {'recall@1': None, 'recall@5': None, 'map': None, 'num_queries': 0}  # undefined, not 0.0
  assert retrieval.why_unscorable(memory_labels, np.array([2, 2]), ['a', 'b', 'c']).startswith(
      'no test video has a class of the train split (test classes c')
  assert retrieval.why_unscorable(memory_labels, np.array([0, 2])) is None


def test_per_class_accuracy_and_confusion():
  labels, predictions = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
  np.testing.assert_array_equal(metrics.confusion_matrix(labels, predictions, 4),
                                [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
  np.testing.assert_array_equal(metrics.per_class_accuracy(labels, predictions, 4), [0.5, 1.0, 0.0, np.nan])
  assert metrics.top1(labels, predictions) == pytest.approx(0.6)


def test_linear_probe_separates_separable_features():
  rng = np.random.default_rng(2)
  centres = rng.normal(scale=4.0, size=(4, 16))
  train_labels, test_labels = rng.integers(0, 4, 80), rng.integers(0, 4, 40)
  train = centres[train_labels] + rng.normal(size=(80, 16))
  test = centres[test_labels] + rng.normal(size=(40, 16))
  assert linear_probe.accuracy(train, train_labels, test, test_labels) > 0.9  # chance is ~0.25
  assert linear_probe.accuracy(train, rng.permutation(train_labels), test, test_labels) < 0.6  # no signal, no score


def test_graft_keeps_the_encoder_and_replaces_every_classifier():
  init = {'encoder': 'fresh', 'projection': 'fresh', 'classifier': 'fresh', 'classifier_hidden': 'fresh'}
  trained = {'encoder': 'trained', 'projection': 'trained', 'classifier': 'ce-head'}
  assert finetune.graft_pretrained(init, trained) == {
      'encoder': 'trained', 'projection': 'trained', 'classifier': 'fresh', 'classifier_hidden': 'fresh'}


def _hand_made_results() -> dict:
  config = base_config.get_config()
  config.eval.retrieval_ks = (1, 5)
  names = ['a', 'b', 'c']
  labels = np.array([0, 1, 2, 2])
  classify = evaluate.classification_metrics(labels, np.array([0, 1, 2, 0]), names)
  protocols = {
      'linear_probe': {'single_view': classify, 'averaged': classify},
      'knn': {'single_view': classify, 'averaged': None},
      'retrieval': {'single_view': {'recall@1': 0.5, 'recall@5': 1.0, 'map': 0.7, 'num_queries': 4}, 'averaged': None},
  }
  return evaluate.assemble_results(protocols, dataset='toy/1.0.0', config=config, step=7, class_names=names,
                                   num_train=9, test_labels=labels, finetune_steps=0)


def test_results_schema_accepts_assembled_results_and_rejects_broken_ones():
  results = _hand_made_results()
  schema.validate(results)
  assert results['linear_probe_top1'] == results['protocols']['linear_probe']['single_view']['top1'] == 0.75
  assert results['protocols']['knn']['single_view']['per_class_top1'] == {'a': 1.0, 'b': 1.0, 'c': 0.5}
  assert results['chance'] == 0.5
  broken = [
      lambda r: r.pop('knn_top1'),  # a spine key
      lambda r: r.update(linear_probe_top1=1.5),
      lambda r: r['protocols'].update(svm=r['protocols']['knn']),  # unknown protocol
      lambda r: r['protocols']['retrieval']['single_view'].update(top5=0.3),  # not recall@k
      lambda r: r['protocols']['knn'].pop('averaged'),
      lambda r: r['figures'].update(embedding_map='map.jpg'),
  ]
  for breaks in broken:
    r = _hand_made_results()
    breaks(r)
    with pytest.raises(jsonschema.ValidationError):
      schema.validate(r)


def test_summary_lists_every_protocol():
  text = report.format_summary(_hand_made_results())
  for expected in ('linear probe', 'kNN (k=', 'chance', 'R@1 50.0%', 'mAP 70.0%', 'hardest classes'):
    assert expected in text, text

