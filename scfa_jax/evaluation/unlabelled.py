"""Evaluation of an encoder trained on a dataset without labels: what it can do, and saying so.

No protocol can be scored without labels (the probe, kNN, retrieval and
fine-tuning all read them), so instead of failing the run evaluation embeds
the train split, keeps it as the search index of ``<workdir>/heads`` (clip ids
and features; labels -1), writes a results.json whose protocols are null with
the reason and whose ``labels`` entry says the dataset has none, and prints
that. ``tools.embed`` and ``tools.search`` then work on the workdir;
``tools.classify`` says it needs a head fitted on labels.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from scfa_jax.data import labels as labels_lib
from scfa_jax.evaluation import embeddings
from scfa_jax.evaluation import heads as heads_lib
from scfa_jax.evaluation import report
from scfa_jax.evaluation import schema
from scfa_jax.training import parallel
from scfa_jax.training import steps


def reason(dataset: str) -> str:
  return (f'{dataset} has no labels: nothing to score (the linear probe, kNN, retrieval and fine-tuning need '
          'labelled train and test splits)')


def evaluate(state: Any, builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict, *,
             preprocessing_mode: str, workdir: str, step: int, save_heads: Callable[..., None]) -> dict[str, Any]:
  """Embeds the train split for search, writes results.json saying there is nothing to score, returns it.

  ``save_heads``: ``evaluate._save_heads`` (workdir, config, contents, step=, class_names=, preprocessing_mode=).
  """
  why = reason(builder.info.full_name)
  p_embed = parallel.pmap_step(functools.partial(steps.embed_step, preprocessing_mode=preprocessing_mode),
                               donate_state=False)
  train = embeddings.extract(p_embed, state, builder=builder, split=config.data.train_split,
                             data_config=config.data, local_batch_size=config.eval.batch_size // jax.process_count())
  splits = builder.info.splits
  num_test = splits[config.data.test_split].num_examples if config.data.test_split in splits else 0
  results = results_of(builder.info.full_name, config, step=step, num_train=len(train['features']),
                       num_test=num_test, why=why)
  if jax.process_index() == 0:
    finite = bool(np.isfinite(train['features']).all()) and len(train['features']) > 0
    contents = lambda: (None, heads_lib.Memory(  # the search index: every train video, no label
        features=np.asarray(train['features'], np.float32), labels=np.full(len(train['features']), -1, np.int64),
        clip_ids=heads_lib.split_clip_ids(builder, config.data.train_split, config.data.frames_key),
        k=config.eval.knn_k, temperature=config.eval.knn_temperature) if finite else None)
    save_heads(workdir, config, contents, step=step, class_names=[], preprocessing_mode=preprocessing_mode)
    path = report.write_results(results, workdir)
    print(f'Evaluation: {why}. Embedded the {len(train["features"])} {config.data.train_split} videos as the '
          f'search index (python -m scfa_jax.tools.search --workdir={workdir} ...).', flush=True)
    logging.info('Results written to %s.', path)
  return results


def results_of(dataset: str, config: ml_collections.ConfigDict, *, step: int, num_train: int, num_test: int,
               why: str) -> dict[str, Any]:
  """The results.json of a run without labels (schema.RESULTS_SCHEMA): every protocol null with ``why``."""
  null = {'single_view': None, 'averaged': None, 'reason': why}
  protocols = {'linear_probe': dict(null), 'knn': dict(null)}
  if config.eval.retrieval_ks:
    protocols['retrieval'] = dict(null)
  return {
      'schema_version': schema.SCHEMA_VERSION, 'dataset': dataset, 'train_split': config.data.train_split,
      'test_split': config.data.test_split, 'step': int(step), 'num_classes': 0, 'class_names': [],
      'num_train': int(num_train), 'num_test': int(num_test), 'chance': 0.0,
      'num_test_clips': int(config.eval.num_test_clips), 'knn_k': int(config.eval.knn_k),
      'linear_probe_top1': None, 'knn_top1': None, 'protocols': protocols,
      'settings': {
          'embedding': 'features', 'knn_temperature': float(config.eval.knn_temperature),
          'linear_probe_c': float(config.eval.linear_probe_c),
          'retrieval_ks': [int(k) for k in config.eval.retrieval_ks], 'finetune_epochs': 0,
          'finetune_learning_rate': float(config.eval.finetune_learning_rate), 'finetune_steps': 0,
          'classifier_hidden_dim': int(config.model.classifier_hidden_dim),
      },
      'labels': {'available': False, 'fraction': labels_lib.fraction_of(config), 'seed': int(config.seed),
                 'num_labelled': 0, 'num_train': int(num_train), 'min_per_class': 0, 'reason': why},
      'figures': {},
  }
