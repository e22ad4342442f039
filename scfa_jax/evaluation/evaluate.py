"""Evaluation of a trained encoder on the held-out split: every protocol, results.json, figures, summary.

Only the train split is used to fit anything (probe, kNN and retrieval memory,
fine-tuning); every number is a fraction of the test split. Each protocol is
scored on one deterministic grid per test video ("single_view") and, with
``config.eval.num_test_clips`` = K > 1, on K temporal views per video averaged
("averaged": mean encoder features for the probe, kNN and retrieval; mean
logits for classifiers). The layout of results.json is ``schema.RESULTS_SCHEMA``.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Optional, Sequence

import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from scfa_jax.data import input_pipeline
from scfa_jax.data import labels as labels_lib
from scfa_jax.evaluation import compute
from scfa_jax.evaluation import embeddings
from scfa_jax.evaluation import finetune as finetune_lib
from scfa_jax.evaluation import heads as heads_lib
from scfa_jax.evaluation import knn
from scfa_jax.evaluation import linear_probe
from scfa_jax.evaluation import metrics
from scfa_jax.evaluation import report
from scfa_jax.evaluation import retrieval
from scfa_jax.evaluation import robustness
from scfa_jax.evaluation import schema
from scfa_jax.evaluation import unlabelled
from scfa_jax.models import scfa

RESULTS_FILE = report.RESULTS_FILE
VIEWS = ('single_view', 'averaged')

Views = dict[str, Optional[np.ndarray]]  # view name -> [N, ...] array, None when not computed
Entry = dict[str, Any]  # one protocol of results.json: {'single_view', 'averaged'[, 'reason']}


def evaluate(state: Any, builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict, *,
             preprocessing_mode: str, workdir: str, writer: Optional[Any] = None, step: int = 0) -> dict[str, Any]:
  """Runs the configured protocols; writes ``<workdir>/results.json`` and the PNGs, prints a summary.

  The numbers are never lost to what follows them: the frozen-encoder results
  are written before fine-tuning starts, the complete results (and the console
  table and eval scalars) before any figure is drawn, and a protocol that
  cannot be scored (non-finite features, a train split with one class...) is
  reported as null with its reason instead of raising.

  Args:
    state: the trained (replicated) state.
    builder: the prepared dataset.
    config: the run's config (``config.eval`` selects the protocols).
    preprocessing_mode: pixel normalisation of the backbone.
    workdir: the run's workdir; results and figures are written there.
    writer: optional CLU writer for eval/* scalars.
    step: the training step of ``state``.

  Returns:
    The results dict written to results.json.
  """
  if not labels_lib.has_labels(builder.info):
    return unlabelled.evaluate(state, builder, config, preprocessing_mode=preprocessing_mode, workdir=workdir,
                               step=step, save_heads=_save_heads)
  class_names = labels_lib.class_names(builder.info)
  num_clips = config.eval.num_test_clips
  # The global clips, then any local views; a fused clip is P images.
  test_views = num_clips * max(scfa.num_pathways_of(config), 1) + config.eval.local_views
  is_writer = jax.process_index() == 0
  logging.info('Evaluating step %d: embedding the %s and %s splits (%d view(s) per test video), then the '
               'protocols.', step, config.data.train_split, config.data.test_split, test_views)
  extract = embeddings.extractor(builder, config, preprocessing_mode)
  train = extract(state, split=config.data.train_split)
  train, labels_entry = _labelled_part(train, config)
  test = _test_views(extract, state, config.data.test_split, num_clips, config.eval.local_views)
  logging.info('Embedded %d train and %d test videos (%d view(s) per test video).', len(train['label']),
               len(test['label']), test_views)
  labels = test['label']
  fitted: dict[str, Any] = {}
  protocols = score_frozen_protocols(train, test, config.eval, class_names, fitted=fitted)
  # Gathered once (the clip ids read the train split), saved again with the fine-tune's folder once it exists.
  head_contents = functools.cache(lambda: _head_contents(builder, config, train, fitted))
  save_heads = functools.partial(_save_heads, workdir, config, head_contents, step=step, class_names=class_names,
                                 preprocessing_mode=preprocessing_mode)
  if is_writer:
    save_heads()
  cost = _compute(state, config)
  robust = None
  if config.eval.robustness:
    if _non_finite('features', {'train': train['features']}) is None and len(train['label']):
      robust = robustness.robustness_report(
          lambda p: extract(state, split=config.data.test_split, perturbation=p), train, config.eval,
          len(class_names))
    else:
      logging.warning('Robustness report skipped: the train features cannot be fitted on.')

  def assemble(finetune_steps: int = 0) -> dict[str, Any]:
    results = assemble_results(protocols, dataset=builder.info.full_name, config=config, step=step,
                               class_names=class_names, num_train=len(train['label']), test_labels=labels,
                               finetune_steps=finetune_steps)
    results['compute'] = cost
    results['labels'] = labels_entry
    if robust is not None:
      results['robustness'] = robust
    return results

  finetune_steps, finetune_dir = 0, None
  if config.eval.finetune_epochs > 0:
    if is_writer:  # an interrupted or failed fine-tune then costs only its own number
      report.write_results(assemble(), workdir)
    probe = fitted.get('linear_probe')
    tuned = finetune_lib.finetune(state, step, builder, config, preprocessing_mode=preprocessing_mode,
                                  workdir=workdir,
                                  probe=None if probe is None else heads_lib.LinearProbe.from_sklearn(probe))
    tuned_test = _test_views(extract, tuned, config.data.test_split, num_clips, config.eval.local_views)
    protocols['finetune'] = _score('finetune', lambda: _classify(labels, tuned_test['logits'], class_names),
                                   problem=_non_finite('logits', {'test': tuned_test['logits']['single_view']}))
    finetune_steps = finetune_lib.num_steps(builder, config)[1]
    finetune_dir = finetune_lib.run_dir(workdir, step, config)
    if is_writer:
      save_heads(finetune_dir=finetune_dir)

  results = assemble(finetune_steps)
  if is_writer:
    path = report.write_results(results, workdir)
    print(report.format_summary(results), flush=True)
    logging.info('Results written to %s.', path)
  if writer is not None:
    writer.write_scalars(step, report.eval_scalars(results))
    writer.flush()
  if is_writer and config.eval.plots:
    # Imported here: matplotlib's figure machinery is 0.6 s of every command's start on 2 cores, drawn or not.
    from scfa_jax.evaluation import figures  # pylint: disable=g-import-not-at-top
    results['figures'], errors = figures.write_figures(figures.FigureInputs(
        results=results, test_features=test['features']['single_view'], test_labels=labels, workdir=workdir,
        finetune_dir=finetune_dir, pretrain_name=config.loss.name, builder=builder, config=config,
        train_features=train['features'], train_labels=train['label']))
    if errors:
      results['figure_errors'] = errors
    report.write_results(results, workdir)
    print('  figures: ' + (', '.join(results['figures'].values()) or 'none'), flush=True)
    for name, reason in errors.items():
      print(f'  figure {name} not drawn: {reason}', flush=True)
  return results


def _head_contents(builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict, train: dict[str, Any],
                   fitted: dict[str, Any]) -> tuple[Optional[heads_lib.LinearProbe], Optional[heads_lib.Memory]]:
  """The fitted linear probe and the kNN memory (train features, labels, clip ids), as inference reads them."""
  probe = fitted.get('linear_probe')
  memory = None
  if len(train['label']) and _non_finite('features', {'train': train['features']}) is None:
    clip_ids = heads_lib.split_clip_ids(builder, config.data.train_split, config.data.frames_key)
    if 'position' in train:  # the labelled fraction
      clip_ids = clip_ids[train['position']]
    memory = heads_lib.Memory(features=np.asarray(train['features'], np.float32), labels=train['label'],
                              clip_ids=clip_ids, k=config.eval.knn_k, temperature=config.eval.knn_temperature)
  return (None if probe is None else heads_lib.LinearProbe.from_sklearn(probe)), memory


def _save_heads(workdir: str, config: ml_collections.ConfigDict, contents: Any, *, step: int,
                class_names: Sequence[str], preprocessing_mode: str, finetune_dir: Optional[str] = None) -> None:
  """Keeps the probe, the kNN memory and the fine-tune's folder in ``<workdir>/heads`` for inference.

  ``contents()`` gives ``_head_contents``' (probe, memory).
  """
  try:
    probe, memory = contents()
    meta = heads_lib.build_meta(
        step=step, class_names=class_names, preprocessing_mode=preprocessing_mode,
        num_test_clips=config.eval.num_test_clips, local_views=config.eval.local_views,
        finetune_dir=None if finetune_dir is None else os.path.relpath(finetune_dir, workdir))
    directory = heads_lib.save(workdir, meta=meta, probe=probe, memory=memory)
    logging.info('Heads for inference written to %s.', directory)
  except Exception as e:  # pylint: disable=broad-except  (the heads never cost the accuracies)
    logging.warning('Heads for inference not saved: %s', e, exc_info=True)


def _labelled_part(train: dict[str, np.ndarray],
                   config: ml_collections.ConfigDict) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """The train videos whose labels may be read (``data.label_fraction``; the same ones training read) and
  the results' ``labels`` entry. With a fraction < 1 the rows carry their split ``position``."""
  fraction = labels_lib.fraction_of(config)
  positions = None if fraction >= 1.0 else labels_lib.stratified_subset(train['label'], fraction, config.seed)
  entry = {'available': True, **labels_lib.summary(positions, train['label'], fraction, config.seed)}
  if positions is None:
    return train, entry
  logging.info('label_fraction %g: the probe, kNN, retrieval and fine-tuning use %d of the %d %s videos.',
               fraction, len(positions), len(train['label']), config.data.train_split)
  return {**{k: v[positions] for k, v in train.items()}, 'position': positions}, entry


def _compute(state: Any, config: ml_collections.ConfigDict) -> Optional[dict[str, Any]]:
  """The results' ``compute`` entry (forward GFLOPs per video), or None if XLA cannot count it."""
  image_shape = input_pipeline.GridSpec.from_config(config.data).image_shape
  pathways = max(scfa.num_pathways_of(config), 1)  # images in one model input (a fused sample has P)
  try:
    flops = compute.forward_flops(state.apply_fn, {'params': state.params, 'batch_stats': state.batch_stats},
                                  scfa.input_shape_of(config))
  except Exception as e:  # pylint: disable=broad-except  (a cost figure never costs the accuracies)
    logging.warning('Forward FLOPs not counted: %s', e)
    return None
  return compute.compute_entry(flops / pathways, images_per_video_single=pathways,
                               images_per_video_averaged=(config.eval.num_test_clips * pathways
                                                          + config.eval.local_views),
                               image_shape=image_shape)


def score_frozen_protocols(train: dict[str, Any], test: dict[str, Any], eval_config: ml_collections.ConfigDict,
                           class_names: Sequence[str], *, fitted: Optional[dict[str, Any]] = None) -> dict[str, Entry]:
  """Linear probe, kNN, the trained classifier (if any) and retrieval, each scored on its own.

  Args:
    train: ``embeddings.extract`` of the train split ({'features': [N, D], 'label': [N]}).
    test: ``_test_views`` of the test split.
    eval_config: ``config.eval``.
    class_names: label names, in label order.
    fitted: if given, receives the fitted probe (``'linear_probe'``, an sklearn pipeline), to be saved.

  Returns:
    {protocol: entry}; an entry that could not be scored is null with a ``reason``.
  """
  labels = test['label']
  features_problem = _non_finite('features', {'train': train['features'],
                                              'test': test['features']['single_view'],
                                              'test (averaged)': test['features']['averaged']})
  if features_problem is None and len(train['label']) == 0:
    features_problem = 'the train split gave no video to fit on'

  def probe() -> Entry:
    fitted_probe = linear_probe.fit(train['features'], train['label'], c=eval_config.linear_probe_c,
                              max_iter=eval_config.linear_probe_max_iter)
    if fitted is not None:
      fitted['linear_probe'] = fitted_probe
    return _classify(labels, _map_views(fitted_probe.predict, test['features']), class_names, predicted=True)

  def nearest_neighbours() -> Entry:
    vote = lambda q: knn.knn_scores(train['features'], train['label'], q, k=eval_config.knn_k,
                                    num_classes=len(class_names), temperature=eval_config.knn_temperature)
    return _classify(labels, _map_views(vote, test['features']), class_names)

  protocols = {
      'linear_probe': _score('linear_probe', probe, features_problem),
      'knn': _score('knn', nearest_neighbours, features_problem),
  }
  if 'logits' in test:  # a model trained with a classifier (cross-entropy baseline)
    protocols['classifier'] = _score('classifier', lambda: _classify(labels, test['logits'], class_names),
                                     _non_finite('logits', {'test': test['logits']['single_view']}))
  if eval_config.retrieval_ks:
    protocols['retrieval'] = _score('retrieval', lambda: _map_views(
        lambda q: retrieval.retrieval_metrics(train['features'], train['label'], q, labels,
                                              ks=tuple(eval_config.retrieval_ks)), test['features']),
                                    features_problem or retrieval.why_unscorable(train['label'], labels, class_names))
  return protocols


def _score(name: str, compute, problem: Optional[str] = None) -> Entry:
  """``compute()``, or a null entry with the reason the protocol cannot be scored."""
  if problem is None:
    try:
      return compute()
    except Exception as e:  # pylint: disable=broad-except  (one protocol never costs the others; logged in full)
      logging.warning('Protocol %s could not be scored: %s', name, e, exc_info=True)
      problem = f'{type(e).__name__}: {e}'
  else:
    logging.warning('Protocol %s not scored: %s.', name, problem)
  return {'single_view': None, 'averaged': None, 'reason': problem}


def _non_finite(what: str, arrays: dict[str, Optional[np.ndarray]]) -> Optional[str]:
  """Why ``arrays`` cannot be scored (rows with NaN/Inf), or None."""
  for split, x in arrays.items():
    problem = None if x is None or len(x) == 0 else metrics.non_finite_rows(x, split, what)
    if problem:
      return f'{problem}: the encoder diverged'
  return None


def _classify(labels: np.ndarray, outputs: Views, class_names: Sequence[str], *, predicted: bool = False) -> Entry:
  """Classification metrics of each view from class scores [N, C] (argmax) or, with ``predicted``, labels [N]."""
  pick = (lambda x: x) if predicted else (lambda x: np.asarray(x).argmax(-1))
  return {view: None if out is None else classification_metrics(labels, pick(out), class_names)
          for view, out in outputs.items()}


def _test_views(extract, state: Any, split: str, num_clips: int, num_local_views: int = 0) -> dict[str, Any]:
  """{'label': [N], output: {'single_view': [N, ...], 'averaged': [N, ...] or None}} of the test split.

  The single view is the canonical evaluation grid (``config.data.eval_sampling``),
  the same one the train split is embedded with; the averaged one is the mean
  over ``num_clips`` interleaved views and ``num_local_views`` local views
  (``config.eval.local_views``: a multi-scale model's global and local views).
  """
  single = extract(state, split=split)
  averaged = num_clips > 1 or num_local_views > 0
  multi = extract(state, split=split, num_clips=num_clips, num_local_views=num_local_views) if averaged else None
  if multi is not None and not np.array_equal(multi['label'], single['label']):
    raise RuntimeError('The single- and multi-view passes over the test split read it in different orders.')
  outputs = {k: {'single_view': v, 'averaged': None if multi is None else multi[k].mean(axis=1)}
             for k, v in single.items() if k != 'label'}
  return {'label': single['label'], **outputs}


def _map_views(fn, views: Views) -> Views:
  return {view: None if views.get(view) is None else fn(views[view]) for view in VIEWS}


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
  """The schema's classification metrics object (NaN per-class accuracies become null)."""
  num_classes = len(class_names)
  per_class = metrics.per_class_accuracy(labels, predictions, num_classes)
  return {
      'top1': metrics.top1(labels, predictions),
      'per_class_top1': {name: None if np.isnan(a) else float(a) for name, a in zip(class_names, per_class)},
      'confusion_matrix': metrics.confusion_matrix(labels, predictions, num_classes).tolist(),
  }


def assemble_results(protocols: dict[str, Any], *, dataset: str, config: ml_collections.ConfigDict, step: int,
                     class_names: Sequence[str], num_train: int, test_labels: np.ndarray,
                     finetune_steps: int) -> dict[str, Any]:
  """The results dict (schema.RESULTS_SCHEMA) from per-protocol metrics; ``figures`` starts empty."""
  counts = np.bincount(test_labels, minlength=len(class_names))
  results = {
      'schema_version': schema.SCHEMA_VERSION,
      'dataset': dataset,
      'train_split': config.data.train_split,
      'test_split': config.data.test_split,
      'step': int(step),
      'num_classes': len(class_names),
      'class_names': list(class_names),
      'num_train': int(num_train),
      'num_test': int(len(test_labels)),
      'chance': float(counts.max() / max(counts.sum(), 1)),  # majority-class rate of the test split
      'num_test_clips': int(config.eval.num_test_clips),
      'knn_k': int(config.eval.knn_k),
  }
  for name in schema.CLASSIFICATION_PROTOCOLS:
    if name in protocols:
      scored = protocols[name]['single_view']
      results[f'{name}_top1'] = None if scored is None else scored['top1']
  results['protocols'] = protocols
  results['settings'] = {
      'embedding': 'features',
      'knn_temperature': float(config.eval.knn_temperature),
      'linear_probe_c': float(config.eval.linear_probe_c),
      'retrieval_ks': [int(k) for k in config.eval.retrieval_ks],
      'finetune_epochs': int(config.eval.finetune_epochs),
      'finetune_learning_rate': float(config.eval.finetune_learning_rate),
      'finetune_steps': int(finetune_steps),
      'classifier_hidden_dim': int(config.model.classifier_hidden_dim),
      'per_frame': bool(config.model.get('per_frame', False)),
      'local_views': int(config.eval.get('local_views', 0)),
      'fused_pathways': int(scfa.num_pathways_of(config)),
  }
  results['figures'] = {}
  return results
