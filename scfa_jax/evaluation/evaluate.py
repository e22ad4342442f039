"""Evaluation of a trained encoder on the held-out split, and the results file.

The encoder is frozen; only the train split is used to fit anything (probe,
kNN memory), and accuracies are fractions of the test split.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import Any, Optional

import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from scfa_jax.evaluation import embeddings
from scfa_jax.evaluation import knn
from scfa_jax.evaluation import linear_probe
from scfa_jax.training import parallel
from scfa_jax.training import steps

RESULTS_FILE = 'results.json'


def evaluate(state: Any, builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict, *,
             preprocessing_mode: str, workdir: str, writer: Optional[Any] = None, step: int = 0) -> dict[str, Any]:
  """Linear probe and kNN on the test split; writes ``<workdir>/results.json`` and prints a summary."""
  class_names = builder.info.features['label'].names
  p_embed = parallel.pmap_step(functools.partial(steps.embed_step, preprocessing_mode=preprocessing_mode),
                               donate_state=False)
  local_batch = config.eval.batch_size // jax.process_count()
  extract = functools.partial(embeddings.extract, p_embed, state, builder, data_config=config.data,
                              local_batch_size=local_batch)
  train = extract(config.data.train_split)
  test = extract(config.data.test_split)
  logging.info('Embedded %d train and %d test videos.', len(train['label']), len(test['label']))

  probe_top1 = linear_probe.accuracy(train['features'], train['label'], test['features'], test['label'],
                                     c=config.eval.linear_probe_c, max_iter=config.eval.linear_probe_max_iter)
  knn_top1 = knn.knn_accuracy(train['features'], train['label'], test['features'], test['label'],
                              k=config.eval.knn_k, num_classes=len(class_names), temperature=config.eval.knn_temperature)
  counts = np.bincount(test['label'], minlength=len(class_names))
  results = {
      'dataset': builder.info.full_name,
      'train_split': config.data.train_split,
      'test_split': config.data.test_split,
      'step': int(step),
      'num_classes': len(class_names),
      'num_train': int(len(train['label'])),
      'num_test': int(len(test['label'])),
      'chance': float(counts.max() / max(counts.sum(), 1)),  # majority-class rate of the test split
      'linear_probe_top1': probe_top1,
      'knn_top1': knn_top1,
      'knn_k': int(config.eval.knn_k),
  }
  if 'logits' in test:  # a model trained with a classifier (cross-entropy baseline)
    results['classifier_top1'] = float(np.mean(np.argmax(test['logits'], -1) == test['label']))

  if jax.process_index() == 0:
    with open(os.path.join(workdir, RESULTS_FILE), 'w') as f:
      json.dump(results, f, indent=2)
    print(format_summary(results), flush=True)
  if writer is not None:
    writer.write_scalars(step, {f'eval/{k}': v for k, v in results.items() if k.endswith('_top1')})
  return results


def format_summary(results: dict[str, Any]) -> str:
  """A short, human-readable table of the results."""
  rows = [('linear probe top-1', results['linear_probe_top1']), (f'kNN top-1 (k={results["knn_k"]})', results['knn_top1'])]
  if 'classifier_top1' in results:
    rows.append(('classifier top-1', results['classifier_top1']))
  rows.append(('chance (majority class)', results['chance']))
  width = max(len(name) for name, _ in rows)
  lines = [f'Results on {results["dataset"]} {results["test_split"]} ({results["num_test"]} videos, '
           f'{results["num_classes"]} classes; trained on {results["num_train"]} {results["train_split"]} videos, '
           f'step {results["step"]})']
  lines += [f'  {name:<{width}}  {value:6.1%}' for name, value in rows]
  return '\n'.join(lines)
