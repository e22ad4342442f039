"""Fine-tuning, the authors' classification protocol: encoder + classifier trained with cross-entropy.

Starts from the pre-trained encoder (with its projection head and BatchNorm
statistics), adds a fresh classifier head (``config.model.classifier_hidden_dim``
> 0 puts a ReLU layer before it, as the authors' Dense(256) did), and trains
everything on one grid per video of the train split with the same pmapped
``steps.train_step`` as pre-training. Runs live in
``<workdir>/finetune/from_step_<N>/`` (checkpoints and TensorBoard events), keyed
by the pre-training step they started from: they never touch the pre-training
checkpoints, an interrupted fine-tune resumes, and a finished one is reused by
``--mode=eval`` instead of being trained again.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import tensorflow_datasets as tfds

from scfa_jax.data import input_pipeline
from scfa_jax.models import scfa
from scfa_jax.training import checkpointing
from scfa_jax.training import loop
from scfa_jax.training import parallel
from scfa_jax.training import steps
from scfa_jax.training import writer as writer_lib

FINETUNE_DIR = 'finetune'
CROSS_ENTROPY = ml_collections.ConfigDict({'name': 'cross_entropy'})


def run_dir(workdir: str, pretrained_step: int) -> str:
  """Where the fine-tune of the pre-training checkpoint at ``pretrained_step`` lives."""
  return os.path.join(workdir, FINETUNE_DIR, f'from_step_{pretrained_step}')


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
  """(steps per epoch, total steps) of fine-tuning: single-view batches of config.train.batch_size."""
  local_batch = config.train.batch_size // jax.process_count()
  per_epoch = input_pipeline.steps_per_epoch(builder, config.data.train_split, local_batch)
  return per_epoch, config.eval.finetune_epochs * per_epoch


def finetune(pretrained: steps.TrainState, pretrained_step: int, builder: tfds.core.DatasetBuilder,
             config: ml_collections.ConfigDict, *, preprocessing_mode: str, workdir: str) -> steps.TrainState:
  """Fine-tunes (resuming, or reusing a finished run) and returns the replicated fine-tuned state.

  Args:
    pretrained: the pre-trained state (replicated or host).
    pretrained_step: its training step, which names the run directory.
    builder: the prepared dataset; only its train split is read.
    config: the run's config; ``config.eval.finetune_*`` set epochs and peak
      learning rate, ``config.optim`` the rest of the optimiser and schedule.
    preprocessing_mode: pixel normalisation of the backbone.
    workdir: the pre-training workdir.
  """
  num_classes = builder.info.features['label'].num_classes
  spec = input_pipeline.GridSpec.from_config(config.data)
  steps_per_epoch, total_steps = num_steps(builder, config)
  optim_config = ml_collections.ConfigDict(config.optim.to_dict())
  optim_config.learning_rate = config.eval.finetune_learning_rate
  schedule = loop.learning_rate_schedule(optim_config, steps_per_epoch=steps_per_epoch, total_steps=total_steps)

  model = scfa.create_model(config.model, num_classes=num_classes, axis_name=parallel.AXIS)
  init = jax.jit(functools.partial(model.init, train=False))
  variables = jax.device_get(init(jax.random.key(config.seed), jnp.zeros((1,) + spec.image_shape, jnp.float32)))
  host = jax.device_get(pretrained)
  state = jax.device_get(steps.TrainState.create(
      apply_fn=model.apply, params=graft_pretrained(variables['params'], host.params),
      tx=loop.create_optimizer(optim_config, schedule), batch_stats=host.batch_stats))

  directory = run_dir(workdir, pretrained_step)
  manager = checkpointing.create_manager(directory, config.ckpt)
  state = checkpointing.restore_latest(manager, state)
  start_step = int(state.step)
  writer = writer_lib.create_writer(directory)
  state = parallel.replicate(state)

  if start_step < total_steps:
    logging.info('Fine-tuning from step %d to %d (%d epochs) in %s.', start_step, total_steps,
                 config.eval.finetune_epochs, directory)
    dataset = input_pipeline.create_train_dataset(
        builder, config.data, local_batch_size=config.train.batch_size // jax.process_count(), seed=config.seed,
        start_step=start_step, num_views=1)
    p_train_step = parallel.pmap_step(
        functools.partial(steps.train_step, loss_config=CROSS_ENTROPY, preprocessing_mode=preprocessing_mode,
                          learning_rate_fn=schedule), donate_state=True)
    state = loop.fit(state, p_train_step,
                     parallel.prefetch_to_device(dataset.as_numpy_iterator(), config.data.prefetch_to_device),
                     start_step=start_step, last_step=total_steps, grids_per_step=config.train.batch_size,
                     log_every_steps=config.train.log_every_steps, ckpt_every_steps=config.ckpt.every_steps,
                     manager=manager, writer=writer, nan_hint='Lower config.eval.finetune_learning_rate.')
  else:
    logging.info('Reusing the finished fine-tune (step %d) in %s.', start_step, directory)
  writer.close()
  manager.close()
  return state
