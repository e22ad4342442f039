"""Fine-tuning, the authors' classification protocol: encoder + classifier trained with cross-entropy.

Starts from the pre-trained encoder (with its projection head and BatchNorm
statistics), adds a fresh classifier head (``config.model.classifier_hidden_dim``
> 0 puts a ReLU layer before it, as the authors' Dense(256) did; with
``model.classifier_init='probe'`` the head starts as evaluation's linear probe), and trains
everything on one grid per video of the train split with the same pmapped
``steps.train_step`` as pre-training. Runs live in
``<workdir>/finetune/from_step_<N>_ep<E>_lr<LR>_head<H>_<hash>/`` (checkpoints,
TensorBoard events and ``finetune_settings.json``), keyed by the pre-training
step they started from and by every setting that changes a fine-tune
(:func:`settings`): they never touch the pre-training checkpoints, an
interrupted fine-tune resumes, a finished one is reused by ``--mode=eval``
instead of being trained again, and a fine-tune with other settings trains in a
folder of its own instead of reusing another's checkpoint.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import tensorflow_datasets as tfds

from scfa_jax.data import input_pipeline
from scfa_jax.data import labels as labels_lib
from scfa_jax.data import release
from scfa_jax.evaluation import heads
from scfa_jax.models import scfa
from scfa_jax.training import checkpointing
from scfa_jax.training import classifier_init
from scfa_jax.training import loop
from scfa_jax.training import parallel
from scfa_jax.training import steps
from scfa_jax.training import workdir_config
from scfa_jax.training import writer as writer_lib

FINETUNE_DIR = 'finetune'
CROSS_ENTROPY = ml_collections.ConfigDict({'name': 'cross_entropy'})


SETTINGS_FILE = 'finetune_settings.json'
# Besides every data/model/optim field that shapes training (config.optim.learning_rate is replaced).
_FINETUNE_FIELDS = ('seed', 'train.batch_size', 'eval.finetune_epochs', 'eval.finetune_learning_rate')


def settings(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Every config field that changes a fine-tune, flat ({'eval.finetune_epochs': 1, ...})."""
  flat = workdir_config.flatten(config)
  if flat.get(workdir_config.CLASSIFIER_INIT_FIELD) == 'random':  # the default keeps the folders of earlier releases
    del flat[workdir_config.CLASSIFIER_INIT_FIELD]
  return {k: v for k, v in flat.items()
          if k in _FINETUNE_FIELDS or (k.startswith(('data.', 'model.', 'optim.')) and k != 'optim.learning_rate'
                                       and k not in workdir_config.FREE_FIELDS)}


def run_dir(workdir: str, pretrained_step: int, config: ml_collections.ConfigDict) -> str:
  """Where the fine-tune of the checkpoint at ``pretrained_step`` with ``config``'s settings lives.

  The name shows the settings one usually varies (epochs, learning rate, head)
  and ends in a hash of all of :func:`settings`, so two fine-tunes share a
  folder (and a checkpoint) only when they would train the same way.
  """
  fields = settings(config)
  digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]
  name = (f'from_step_{pretrained_step}_ep{config.eval.finetune_epochs}_lr{config.eval.finetune_learning_rate:g}'
          f'_head{config.model.classifier_hidden_dim}_{digest}')
  return os.path.join(workdir, FINETUNE_DIR, name)


def graft_pretrained(init_params: dict[str, Any], pretrained_params: dict[str, Any]) -> dict[str, Any]:
  """The fine-tuning model's parameters: pre-trained everywhere but the new classifier head.

  A model pre-trained with cross-entropy has a classifier of its own; it is
  replaced too, so every fine-tune starts from the same kind of fresh head.
  """
  params = dict(init_params)
  for name, value in pretrained_params.items():
    if name in params and not name.startswith('classifier'):
      params[name] = value
  return params


def num_steps(builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict) -> tuple[int, int]:
  """(steps per epoch, total steps) of fine-tuning: single-view batches of config.train.batch_size.

  Epochs are over the labelled videos (``config.data.label_fraction``).
  """
  local_batch = config.train.batch_size // jax.process_count()
  per_epoch = input_pipeline.steps_per_epoch(builder, config.data.train_split, local_batch,
                                             keep=labels_lib.labelled_positions(builder, config))
  return per_epoch, config.eval.finetune_epochs * per_epoch


def finetune(pretrained: steps.TrainState, pretrained_step: int, builder: tfds.core.DatasetBuilder,
             config: ml_collections.ConfigDict, *, preprocessing_mode: str, workdir: str,
             probe: Optional[heads.LinearProbe] = None) -> steps.TrainState:
  """Fine-tunes (resuming, or reusing a finished run) and returns the replicated fine-tuned state.

  Args:
    pretrained: the pre-trained state (replicated or host).
    pretrained_step: its training step, which names the run directory.
    builder: the prepared dataset; only its train split is read.
    config: the run's config; ``config.eval.finetune_*`` set epochs and peak
      learning rate, ``config.optim`` the rest of the optimiser and schedule.
    preprocessing_mode: pixel normalisation of the backbone.
    workdir: the pre-training workdir.
    probe: evaluation's linear probe of ``pretrained``; with ``model.classifier_init='probe'`` the classifier
      starts from it (``training.classifier_init``) instead of fresh.
  """
  num_classes = len(labels_lib.class_names(builder.info))
  spec = input_pipeline.GridSpec.from_config(config.data)
  steps_per_epoch, total_steps = num_steps(builder, config)
  optim_config = ml_collections.ConfigDict(config.optim.to_dict())
  optim_config.learning_rate = config.eval.finetune_learning_rate
  schedule = loop.learning_rate_schedule(optim_config, steps_per_epoch=steps_per_epoch, total_steps=total_steps)

  model = scfa.model_of(config, num_classes=num_classes, axis_name=parallel.AXIS, pathway_heads=False)
  init = jax.jit(functools.partial(model.init, train=False))
  variables = jax.device_get(init(jax.random.key(config.seed), jnp.zeros((1,) + scfa.input_shape_of(config),
                                                                          jnp.float32)))
  host = jax.device_get(pretrained)
  params = graft_pretrained(variables['params'], host.params)
  if classifier_init.is_enabled(config.model):
    if probe is None:
      logging.warning("model.classifier_init='probe', but evaluation fitted no probe: the fine-tune's classifier "
                      'starts fresh.')
    else:
      params = classifier_init.with_probe_classifier(params, probe, num_classes)
  state = jax.device_get(steps.TrainState.create(
      apply_fn=model.apply, params=params,
      tx=loop.create_optimizer(optim_config, schedule), batch_stats=host.batch_stats))

  directory = run_dir(workdir, pretrained_step, config)
  manager = checkpointing.create_manager(directory, config.ckpt)
  if jax.process_index() == 0:  # for people browsing the folder; the name's hash is what keys it
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, SETTINGS_FILE), 'w') as f:
      json.dump({'pretrained_step': pretrained_step, **settings(config)}, f, indent=2, sort_keys=True)
  state = checkpointing.restore_latest(manager, state)
  start_step = int(state.step)
  writer = writer_lib.create_writer(directory)
  state = parallel.replicate(state)

  if start_step < total_steps:
    logging.info('Fine-tuning from step %d to %d (%d epochs) in %s.', start_step, total_steps,
                 config.eval.finetune_epochs, directory)
    dataset = input_pipeline.create_train_dataset(
        builder, config.data, local_batch_size=config.train.batch_size // jax.process_count(), seed=config.seed,
        start_step=start_step, num_views=1, keep=labels_lib.labelled_positions(builder, config))
    p_train_step = parallel.pmap_step(
        functools.partial(steps.train_step, loss_config=CROSS_ENTROPY, preprocessing_mode=preprocessing_mode,
                          learning_rate_fn=schedule, skip_nonfinite=config.train.skip_nonfinite_steps),
        donate_state=True)
    batches = parallel.prefetch_to_device(release.numpy_batches(dataset), config.data.prefetch_to_device)
    try:
      state = loop.fit(state, p_train_step, batches, start_step=start_step, last_step=total_steps,
                       grids_per_step=config.train.batch_size * max(scfa.num_pathways_of(config), 1),
                       log_every_steps=config.train.log_every_steps, ckpt_every_steps=config.ckpt.every_steps,
                       manager=manager, writer=writer, nan_hint='Lower config.eval.finetune_learning_rate.')
    finally:  # closing the generator ends numpy_batches, which lets go of the iterator on a thread
      batches.close()
  else:
    logging.info('Reusing the finished fine-tune (step %d) in %s.', start_step, directory)
  writer.close()
  manager.close()
  return state
