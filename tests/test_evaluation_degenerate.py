"""Evaluation never loses results: degenerate features, tiny splits and failing figures, all in-process.

The first test is the crash that broke CI: a tiny model's constant test
features made scikit-learn's t-SNE divide by a zero spread and segfault the
whole process after training, before results.json existed. It runs in this
process on purpose: if the guard ever stops working, pytest itself dies.
"""

import json
import os

import jax
import numpy as np
import pytest

from scfa_jax.evaluation import evaluate
from scfa_jax.evaluation import figures
from scfa_jax.evaluation import plots
from scfa_jax.evaluation import report
from scfa_jax.evaluation import schema
from scfa_jax.training import parallel
from scfa_jax.training import train
from tests.conftest import make_tiny_config

CLASSES = ['a', 'b', 'c']


@pytest.mark.parametrize('features', [
    np.ones((12, 8)),  # exactly constant: segfaulted in scikit-learn's Barnes-Hut t-SNE
    np.ones((12, 8)) + 1e-12,  # constant up to float noise
])
def test_tsne_refuses_constant_features_instead_of_crashing(features):
  with pytest.raises(plots.DegenerateInputError, match='same features'):
    plots.tsne_2d(features)


@pytest.mark.slow
def test_tsne_embeds_features_of_tiny_magnitude():
  """Features around 1e-30 also crashed t-SNE (underflow); rescaled first, they embed normally."""
  features = np.random.default_rng(0).normal(size=(12, 8)) * 1e-30
  coordinates = plots.tsne_2d(features)
  assert coordinates.shape == (12, 2) and np.isfinite(coordinates).all()


@pytest.mark.parametrize('features,reason', [
    (np.ones((2, 8)), 'at least 3'),  # fewer videos than t-SNE's perplexity needs
    (np.ones((1, 8)), 'at least 3'),  # one test video
    (np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, np.inf], [1.0, 0.0]]), '2 of 4 test videos have non-finite'),
])
def test_tsne_names_why_it_cannot_draw(features, reason):
  with pytest.raises(plots.DegenerateInputError, match=reason):
    plots.tsne_input(features)


def _views(single, averaged=None):
  return {'single_view': single, 'averaged': averaged}


def _eval_config(**overrides):
  config = make_tiny_config('/nonexistent').eval
  config.update(knn_k=3, **overrides)
  return config


def _split(features, labels):
  return {'features': np.asarray(features, np.float64), 'label': np.asarray(labels)}


def _test_split(features, labels, averaged=None):
  return {'features': _views(np.asarray(features, np.float64), averaged), 'label': np.asarray(labels)}


def _results(protocols, labels):
  config = make_tiny_config('/nonexistent')
  config.eval.knn_k = 3
  return evaluate.assemble_results(protocols, dataset='toy/1.0.0', config=config, step=1, class_names=CLASSES,
                                   num_train=6, test_labels=np.asarray(labels), finetune_steps=0)


def test_nan_features_report_null_protocols_with_a_reason():
  rng = np.random.default_rng(0)
  train_split = _split(rng.normal(size=(6, 4)), [0, 0, 1, 1, 2, 2])
  test_features = rng.normal(size=(3, 4))
  test_features[1, 2] = np.nan
  protocols = evaluate.score_frozen_protocols(train_split, _test_split(test_features, [0, 1, 2]), _eval_config(),
                                              CLASSES)
  for name in ('linear_probe', 'knn', 'retrieval'):
    assert protocols[name]['single_view'] is None and protocols[name]['averaged'] is None
    assert '1 of 3 test videos have non-finite (NaN/Inf) features' in protocols[name]['reason']
  results = _results(protocols, [0, 1, 2])
  schema.validate(results)  # null protocols are part of the documented layout
  assert results['linear_probe_top1'] is None and results['knn_top1'] is None
  summary = report.format_summary(results)
  assert 'linear probe not scored: 1 of 3 test videos' in summary
  assert report.eval_scalars(results) == {}


def test_constant_features_are_scored_at_chance_not_refused():
  protocols = evaluate.score_frozen_protocols(_split(np.ones((6, 4)), [0, 0, 1, 1, 2, 2]),
                                              _test_split(np.ones((3, 4)), [0, 1, 2]), _eval_config(), CLASSES)
  for name in ('linear_probe', 'knn'):
    assert protocols[name]['single_view']['top1'] == pytest.approx(1 / 3)
  schema.validate(_results(protocols, [0, 1, 2]))


def test_one_test_video_and_a_test_class_absent_from_train():
  rng = np.random.default_rng(1)
  train_split = _split(rng.normal(size=(4, 4)), [0, 0, 1, 1])  # class 'c' never trained on
  protocols = evaluate.score_frozen_protocols(train_split, _test_split(rng.normal(size=(1, 4)), [2]),
                                              _eval_config(), CLASSES)
  assert protocols['linear_probe']['single_view']['top1'] == 0.0  # it cannot predict an unseen class
  assert protocols['knn']['single_view']['per_class_top1'] == {'a': None, 'b': None, 'c': 0.0}
  assert protocols['retrieval']['single_view'] is None  # nothing of its class to retrieve: undefined, not 0
  assert 'test classes c are absent' in protocols['retrieval']['reason']
  schema.validate(_results(protocols, [2]))


def test_retrieval_with_no_scorable_query_reads_as_undefined_everywhere(tmp_path):
  """Every test class absent from train: mAP and Recall@k were reported as 0.0, as if the encoder had failed."""
  rng = np.random.default_rng(3)
  protocols = evaluate.score_frozen_protocols(_split(rng.normal(size=(4, 4)), [0, 0, 1, 1]),
                                              _test_split(rng.normal(size=(2, 4)), [2, 2], rng.normal(size=(2, 4))),
                                              _eval_config(), CLASSES)
  assert protocols['retrieval'] == {'single_view': None, 'averaged': None,
                                    'reason': protocols['retrieval']['reason']}
  results = _results(protocols, [2, 2])
  schema.validate(results)
  path = report.write_results(results, str(tmp_path))
  with open(path) as f:
    assert json.load(f)['protocols']['retrieval']['single_view'] is None  # null in results.json
  summary = report.format_summary(results)
  assert 'retrieval not scored: no test video has a class of the train split' in summary and 'mAP' not in summary
  assert not any('retrieval' in key for key in report.eval_scalars(results))
  from scfa_jax.tools import compare  # pylint: disable=g-import-not-at-top
  row, = compare.summarize([compare.Run('m', 0, str(tmp_path), results)])
  assert row.metrics['retrieval mAP'] is None
  assert 'retrieval mAP' not in compare.to_markdown([row])
  compare.plot_accuracy_vs_compute([row], str(tmp_path / 'cmp.png'), metric='retrieval mAP')


def test_a_protocol_that_raises_is_null_and_the_others_are_kept():
  """A train split of one class: the logistic regression cannot be fitted; kNN and retrieval still can."""
  rng = np.random.default_rng(2)
  protocols = evaluate.score_frozen_protocols(_split(rng.normal(size=(4, 4)), [1, 1, 1, 1]),
                                              _test_split(rng.normal(size=(3, 4)), [0, 1, 2]), _eval_config(),
                                              CLASSES)
  assert protocols['linear_probe']['single_view'] is None
  assert protocols['linear_probe']['reason'].startswith('ValueError')
  assert protocols['knn']['single_view']['top1'] == pytest.approx(1 / 3)
  schema.validate(_results(protocols, [0, 1, 2]))


def test_a_failing_figure_is_reported_and_the_others_are_drawn(tmp_path, monkeypatch):
  protocols = evaluate.score_frozen_protocols(_split(np.ones((6, 4)), [0, 0, 1, 1, 2, 2]),
                                              _test_split(np.ones((3, 4)), [0, 1, 2]), _eval_config(), CLASSES)
  results = _results(protocols, [0, 1, 2])

  def broken(*args, **kwargs):
    raise OSError('No space left on device')

  monkeypatch.setattr(plots, 'plot_confusion_matrices', broken)
  written, errors = figures.write_figures(figures.FigureInputs(
      results=results, test_features=np.ones((3, 4)), test_labels=np.asarray([0, 1, 2]), workdir=str(tmp_path),
      finetune_dir=None, pretrain_name='supcon'))
  assert errors == {'confusion_matrix': 'OSError: No space left on device',
                    'embedding_map': 'all test videos have (nearly) the same features: the encoder output is constant'}
  assert written == {}  # no training events in tmp_path: the curves are skipped, not an error
  results.update(figures=written, figure_errors=errors)
  schema.validate(results)


@pytest.mark.slow
@pytest.mark.parametrize('weights', ['zero', 'nan'])
def test_evaluate_writes_results_for_a_collapsed_or_diverged_encoder(tiny_config, tmp_path, weights):
  """Through the real evaluate(): zero weights give constant features (the CI crash), NaN weights NaN features."""
  tiny_config.eval.plots = True  # the figures are what fails on such features
  workdir = str(tmp_path / 'run')
  os.makedirs(workdir)
  run = train._set_up(tiny_config, workdir, mode='train', allow_config_change=False)  # pylint: disable=protected-access
  fill = 0.0 if weights == 'zero' else np.nan
  params = jax.tree.map(lambda x: np.full_like(x, fill), run.state.params)
  state = parallel.replicate(run.state.replace(params=params))
  results = evaluate.evaluate(state, run.builder, tiny_config, preprocessing_mode=run.preprocessing_mode,
                              workdir=workdir, step=0)
  run.manager.close()
  with open(os.path.join(workdir, 'results.json')) as f:
    assert json.load(f) == results
  assert 'embedding_map' in results['figure_errors']
  if weights == 'zero':
    assert results['linear_probe_top1'] is not None and 'confusion_matrix' in results['figures']
  else:
    assert results['linear_probe_top1'] is None and 'non-finite' in results['protocols']['knn']['reason']

