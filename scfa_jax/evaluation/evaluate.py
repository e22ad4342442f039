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
import json
import logging
import os
from typing import Any, Optional, Sequence

import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from scfa_jax.evaluation import embeddings
from scfa_jax.evaluation import finetune as finetune_lib
from scfa_jax.evaluation import gallery
from scfa_jax.evaluation import knn
from scfa_jax.evaluation import linear_probe
from scfa_jax.evaluation import metrics
from scfa_jax.evaluation import plots
from scfa_jax.evaluation import retrieval
from scfa_jax.evaluation import schema
from scfa_jax.training import parallel
from scfa_jax.training import steps

RESULTS_FILE = 'results.json'
FIGURES = {
    'confusion_matrix': 'confusion_matrix.png',
    'embedding_map': 'embedding_tsne.png',
    'training_curves': 'training_curves.png',
}
CURVE_TAGS = ('train/loss', 'train/learning_rate')
VIEWS = ('single_view', 'averaged')

Views = dict[str, Optional[np.ndarray]]  # view name -> [N, ...] array, None when not computed


def evaluate(state: Any, builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict, *,
             preprocessing_mode: str, workdir: str, writer: Optional[Any] = None, step: int = 0) -> dict[str, Any]:
  """Runs the configured protocols; writes ``<workdir>/results.json`` and the PNGs, prints a summary.

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
  class_names = list(builder.info.features['label'].names)
  num_clips = config.eval.num_test_clips
  logging.info('Evaluating step %d: embedding the %s and %s splits (%d view(s) per test video), then the '
               'protocols.', step, config.data.train_split, config.data.test_split, num_clips)
  p_embed = parallel.pmap_step(functools.partial(steps.embed_step, preprocessing_mode=preprocessing_mode),
                               donate_state=False)
  extract = functools.partial(embeddings.extract, p_embed, builder=builder, data_config=config.data,
                              local_batch_size=config.eval.batch_size // jax.process_count())
  train = extract(state, split=config.data.train_split)
  test = _test_views(extract, state, config.data.test_split, num_clips)
  logging.info('Embedded %d train and %d test videos (%d view(s) each).', len(train['label']), len(test['label']),
               num_clips)
  labels = test['label']

  predictions: dict[str, Views] = {}
  probe = linear_probe.fit(train['features'], train['label'], c=config.eval.linear_probe_c,
                           max_iter=config.eval.linear_probe_max_iter)
  predictions['linear_probe'] = _map_views(probe.predict, test['features'])
  predictions['knn'] = _map_views(
      lambda q: knn.knn_scores(train['features'], train['label'], q, k=config.eval.knn_k,
                               num_classes=len(class_names), temperature=config.eval.knn_temperature).argmax(-1),
      test['features'])
  if 'logits' in test:  # a model trained with a classifier (cross-entropy baseline)
    predictions['classifier'] = _map_views(lambda x: x.argmax(-1), test['logits'])

  finetune_steps, finetune_dir = 0, None
  if config.eval.finetune_epochs > 0:
    tuned = finetune_lib.finetune(state, step, builder, config, preprocessing_mode=preprocessing_mode,
                                  workdir=workdir)
    tuned_test = _test_views(extract, tuned, config.data.test_split, num_clips)
    predictions['finetune'] = _map_views(lambda x: x.argmax(-1), tuned_test['logits'])
    finetune_steps = finetune_lib.num_steps(builder, config)[1]
    finetune_dir = finetune_lib.run_dir(workdir, step)

  protocols: dict[str, Any] = {
      name: {view: None if pred is None else classification_metrics(labels, pred, class_names)
             for view, pred in views.items()}
      for name, views in predictions.items()}
  if config.eval.retrieval_ks:
    protocols['retrieval'] = _map_views(
        lambda q: retrieval.retrieval_metrics(train['features'], train['label'], q, labels,
                                              ks=tuple(config.eval.retrieval_ks)), test['features'])

  results = assemble_results(
      protocols, dataset=builder.info.full_name, config=config, step=step, class_names=class_names,
      num_train=len(train['label']), test_labels=labels, finetune_steps=finetune_steps)
  if jax.process_index() == 0:
    if config.eval.plots:
      results['figures'] = write_figures(results, test['features']['single_view'], labels, workdir=workdir,
                                         finetune_dir=finetune_dir, pretrain_name=config.loss.name)
      # Retrieval gallery (scfa_jax.evaluation.gallery): drawn on its own; a failure is logged and left out.
      try:
        gallery.write(builder, config, train_features=train['features'], train_labels=train['label'],
                      test_features=test['features']['single_view'], test_labels=labels,
                      out=os.path.join(workdir, gallery.FILE_NAME))
        results['figures']['retrieval_examples'] = gallery.FILE_NAME
      except Exception:  # pylint: disable=broad-except
        logging.exception('The retrieval gallery could not be drawn; the run goes on without it.')
    schema.validate(results)
    with open(os.path.join(workdir, RESULTS_FILE), 'w') as f:
      json.dump(results, f, indent=2)
    print(format_summary(results), flush=True)
  if writer is not None:
    writer.write_scalars(step, eval_scalars(results))
    writer.flush()
  return results


def _test_views(extract, state: Any, split: str, num_clips: int) -> dict[str, Any]:
  """{'label': [N], output: {'single_view': [N, ...], 'averaged': [N, ...] or None}} of the test split.

  The single view is the canonical evaluation grid (``config.data.eval_sampling``),
  the same one the train split is embedded with; the averaged one is the mean
  over ``num_clips`` interleaved views.
  """
  single = extract(state, split=split)
  multi = extract(state, split=split, num_clips=num_clips) if num_clips > 1 else None
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
      results[f'{name}_top1'] = protocols[name]['single_view']['top1']
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
  }
  results['figures'] = {}
  return results


def write_figures(results: dict[str, Any], test_features: np.ndarray, test_labels: np.ndarray, *, workdir: str,
                  finetune_dir: Optional[str], pretrain_name: str) -> dict[str, str]:
  """Writes the PNGs into ``workdir``; returns {figure: file name} of those written."""
  class_names = results['class_names']
  written = {}
  matrices = {name: np.asarray(entry['single_view']['confusion_matrix'])
              for name, entry in results['protocols'].items() if name in schema.CLASSIFICATION_PROTOCOLS}
  plots.plot_confusion_matrices(matrices, class_names, os.path.join(workdir, FIGURES['confusion_matrix']))
  written['confusion_matrix'] = FIGURES['confusion_matrix']

  coordinates = plots.tsne_2d(test_features)
  plots.plot_embedding_map(coordinates, test_labels, class_names, os.path.join(workdir, FIGURES['embedding_map']),
                           title=f'Test videos: t-SNE of encoder features (step {results["step"]})')
  written['embedding_map'] = FIGURES['embedding_map']

  runs = {f'pre-training ({pretrain_name})': plots.read_scalars(workdir, CURVE_TAGS)}
  if finetune_dir is not None:
    runs['fine-tuning (cross_entropy)'] = plots.read_scalars(finetune_dir, CURVE_TAGS)
  runs = {name: curves for name, curves in runs.items() if curves}
  if runs:  # absent only when the workdir has no training events (copied checkpoints)
    plots.plot_training_curves(runs, os.path.join(workdir, FIGURES['training_curves']))
    written['training_curves'] = FIGURES['training_curves']
  return written


def eval_scalars(results: dict[str, Any]) -> dict[str, float]:
  """TensorBoard scalars: eval/<protocol>_top1[_averaged], eval/retrieval_<metric>[_averaged]."""
  scalars = {}
  for name, entry in results['protocols'].items():
    for view, suffix in (('single_view', ''), ('averaged', '_averaged')):
      if entry[view] is None:
        continue
      if name == 'retrieval':
        scalars.update({f'eval/retrieval_{k}{suffix}': v for k, v in entry[view].items() if k != 'num_queries'})
      else:
        scalars[f'eval/{name}_top1{suffix}'] = entry[view]['top1']
  return scalars


_PROTOCOL_NAMES = {'linear_probe': 'linear probe', 'knn': 'kNN', 'classifier': 'classifier (CE-trained)',
                   'finetune': 'fine-tuned'}


def format_summary(results: dict[str, Any]) -> str:
  """A short, human-readable table of the results: one row per protocol, one column per view setting."""
  k = results['num_test_clips']
  averaged = k > 1
  lines = [f'Results on {results["dataset"]} {results["test_split"]} ({results["num_test"]} videos, '
           f'{results["num_classes"]} classes; trained on {results["num_train"]} {results["train_split"]} videos, '
           f'step {results["step"]})']
  header = f'  {"top-1 accuracy":<26}{"1 view":>8}' + (f'{f"{k} views":>10}' if averaged else '')
  lines.append(header)
  for name, entry in results['protocols'].items():
    if name == 'retrieval':
      continue
    label = _PROTOCOL_NAMES[name] + (f' (k={results["knn_k"]})' if name == 'knn' else '')
    row = f'  {label:<26}{entry["single_view"]["top1"]:>8.1%}'
    if averaged:
      row += f'{entry["averaged"]["top1"]:>10.1%}' if entry['averaged'] is not None else f'{"-":>10}'
    lines.append(row)
  lines.append(f'  {"chance (majority class)":<26}{results["chance"]:>8.1%}')
  if 'retrieval' in results['protocols']:
    for view, title in (('single_view', '1 view'), ('averaged', f'{k} views')):
      found = results['protocols']['retrieval'][view]
      if found is not None:
        recalls = '  '.join(f'R@{key[7:]} {v:.1%}' for key, v in found.items() if key.startswith('recall@'))
        lines.append(f'  retrieval, {title}: {recalls}  mAP {found["map"]:.1%}')
  per_class = results['protocols']['linear_probe']['single_view']['per_class_top1']
  scored = sorted((v, n) for n, v in per_class.items() if v is not None)
  lines.append('  hardest classes (linear probe): ' + ', '.join(f'{n} {v:.0%}' for v, n in scored[:3]))
  if results['figures']:
    lines.append('  figures: ' + ', '.join(results['figures'].values()))
  return '\n'.join(lines)
