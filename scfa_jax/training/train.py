"""train_and_evaluate: dataset -> views -> grids -> pmapped SupCon steps -> checkpoints -> evaluation.

The one function behind ``python -m scfa_jax.main`` and the Colab notebooks.
Side effects (TensorBoard writer, checkpoint manager, console progress) live
here; everything numeric is in pure modules it composes.
"""

from __future__ import annotations

import functools
import os
from typing import Any, NamedTuple

import jax
import ml_collections
import optax
import orbax.checkpoint as ocp
import tensorflow_datasets as tfds
from flax import traverse_util

from scfa_jax import config_validation
from scfa_jax import datasets
from scfa_jax import errors
from scfa_jax.data import input_pipeline
from scfa_jax.data import labels as labels_lib
from scfa_jax.data import pretext
from scfa_jax.data import release
from scfa_jax.evaluation import evaluate as evaluate_lib
from scfa_jax.models import scfa
from scfa_jax.training import checkpointing
from scfa_jax.training import classifier_init
from scfa_jax.training import data_parallel
from scfa_jax.training import init_from
from scfa_jax.training import initial_state
from scfa_jax.training import loop
from scfa_jax.training import memory_queue
from scfa_jax.training import momentum
from scfa_jax.training import parallel
from scfa_jax.training import startup
from scfa_jax.training import steps
from scfa_jax.training import workdir_config
from scfa_jax.training import writer as writer_lib


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Fails fast, before any data is read or anything is written, on settings that cannot work.

  Raises:
    errors.ConfigError: a field's value (listed with what it accepts), or
      ported weights (``model.init_from``) of another architecture.
    errors.MissingFilesError, errors.BadFilesError: ``model.init_from`` is not a ported backbone.
  """
  config_validation.validate(config, device_count=jax.device_count())
  init_from.check(config)


def momentum_schedule(config: ml_collections.ConfigDict, total_steps: int):
  """The key encoder's momentum per step (``training.momentum``), or None without one."""
  if not momentum.is_enabled(config.model):
    return None
  return momentum.schedule(config.model.momentum, config.model.momentum_schedule, total_steps)


class _Run(NamedTuple):
  """Everything a run needs, built the same way for training and for --mode=eval."""

  builder: tfds.core.DatasetBuilder
  schedule: optax.Schedule
  state: steps.TrainState  # host arrays, restored from the latest checkpoint if there is one
  manager: ocp.CheckpointManager
  preprocessing_mode: str
  local_batch: int
  total_steps: int  # the schedule's length: num_epochs of the train split
  keep: Any  # positions of the train split trained on (the labelled fraction), None = all


def _checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), 'checkpoints')


def _set_up(config: ml_collections.ConfigDict, workdir: str, *, mode: str, allow_config_change: bool) -> _Run:
  """Checks the config, prepares the dataset and restores (or initialises) the train state.

  The config is checked alone, then against ``<workdir>/config.json``, then
  against the prepared dataset: every mistake stops the run before its first step.
  """
  validate_config(config)
  os.makedirs(workdir, exist_ok=True)
  workdir_config.check(config, workdir, trained=checkpointing.has_checkpoint(_checkpoint_dir(workdir)),
                       allow_change=allow_config_change, mode=mode, write=jax.process_index() == 0)
  axis_name = data_parallel.select(config.train.parallelism).axis_name  # also rejects an unknown value
  builder = datasets.get_builder(config.data)
  config_validation.validate_dataset(config, {name: split.num_examples for name, split in builder.info.splits.items()},
                                     list(builder.info.features), dataset=builder.info.full_name,
                                     process_count=jax.process_count())
  labelled = labels_lib.labelled_positions(builder, config)  # checks data.label_fraction against the classes
  keep = labelled if labels_lib.reads_labels(config) else None  # self-supervised: every train video
  num_classes = len(labels_lib.class_names(builder.info))
  local_batch = config.train.batch_size // jax.process_count()
  try:
    steps_per_epoch = input_pipeline.steps_per_epoch(builder, config.data.train_split, local_batch, keep=keep)
    if config.eval.after_training and config.eval.finetune_epochs > 0:  # fine-tuning reads the labelled videos
      input_pipeline.steps_per_epoch(builder, config.data.train_split, local_batch, keep=labelled)
  except ValueError as e:  # the labelled fraction holds fewer videos than a batch
    raise errors.ConfigError(str(e)) from None
  total_steps = config.train.num_epochs * steps_per_epoch
  preprocessing_mode = init_from.preprocessing(config)
  model = scfa.model_of(config, num_classes=num_classes if config.loss.name == 'cross_entropy' else 0,
                        axis_name=axis_name)
  schedule = loop.learning_rate_schedule(config.optim, steps_per_epoch=steps_per_epoch, total_steps=total_steps)
  state = initial_state.create_train_state(jax.random.key(config.seed), model, scfa.input_shape_of(config),
                             loop.create_optimizer(config.optim, schedule), config.model)
  if config.loss.queue_size:
    state = state.replace(queue=memory_queue.init(config.loss.queue_size, config.model.proj_dim))
  if momentum.is_enabled(config.model):  # the key encoder starts as a copy of the online one
    state = state.replace(momentum_params=jax.tree.map(lambda x: x.copy(), state.params))
  manager = checkpointing.create_manager(workdir, config.ckpt)
  state = checkpointing.restore_latest(manager, state)
  if mode == 'train' and int(state.step) == 0 and config.loss.name == 'cross_entropy' and \
      classifier_init.is_enabled(config.model):  # once: the checkpoints hold the classifier from then on
    state = classifier_init.initialise(state, builder, config, preprocessing_mode=preprocessing_mode,
                                       positions=labelled, num_classes=num_classes)
  return _Run(builder, schedule, state, manager, preprocessing_mode, local_batch, total_steps, keep)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       allow_config_change: bool = False) -> dict[str, Any]:
  """Trains SCFA as configured, resuming from ``workdir`` if it holds checkpoints, then evaluates.

  Args:
    config: the run config (``scfa_jax/config.py``).
    workdir: checkpoints, TensorBoard events, config.json and results.json.
    allow_config_change: resume although fields that change training differ
      from ``<workdir>/config.json`` (the change is recorded in the workdir).

  Returns:
    The results dict that is also written to ``<workdir>/results.json`` (empty
    when ``config.eval.after_training`` is off).

  Raises:
    errors.UserError: a mistake the message says how to fix (bad config value,
      changed config, missing dataset files, wrong weights), before any step.
  """
  run = _set_up(config, workdir, mode='train', allow_config_change=allow_config_change)
  start_step = int(run.state.step)
  # The schedule always spans num_epochs; max_steps only stops early, so a run
  # stopped by it and resumed later follows the same learning-rate curve.
  last_step = min(run.total_steps, config.train.max_steps) if config.train.max_steps > 0 else run.total_steps
  startup.log_summary(startup.summary_lines(config, run.builder, workdir=workdir, start_step=start_step,
                                            last_step=last_step, preprocessing_mode=run.preprocessing_mode,
                                            keep=run.keep))
  writer = writer_lib.create_writer(workdir)
  if start_step == 0:
    writer.write_hparams({k: v for k, v in traverse_util.flatten_dict(config.to_dict(), sep='.').items()
                          if v is not None})
  dp = data_parallel.select(config.train.parallelism)
  state = dp.replicate(run.state)

  if start_step < last_step:
    pretext_spec = pretext.Spec.from_config(config.loss)
    dataset = input_pipeline.create_train_dataset(run.builder, config.data, local_batch_size=run.local_batch,
                                                  seed=config.seed, start_step=start_step, keep=run.keep,
                                                  pretext_spec=pretext_spec)
    p_train_step = dp.compile_step(
        functools.partial(steps.train_step, loss_config=config.loss, preprocessing_mode=run.preprocessing_mode,
                          learning_rate_fn=run.schedule, axis_name=dp.axis_name,
                          skip_nonfinite=config.train.skip_nonfinite_steps,
                          momentum_fn=momentum_schedule(config, run.total_steps)), donate_state=True)
    batches = dp.prefetch_to_device(release.numpy_batches(dataset), config.data.prefetch_to_device)
    try:
      state = loop.fit(state, p_train_step, batches, start_step=start_step, last_step=last_step,
                       grids_per_step=input_pipeline.images_per_video(config.data, pretext_spec)
                       * config.train.batch_size,
                       log_every_steps=config.train.log_every_steps, ckpt_every_steps=config.ckpt.every_steps,
                       manager=run.manager, writer=writer,
                       nan_hint='Lower config.optim.learning_rate, or set config.optim.grad_clip_norm.')
    finally:  # evaluation (or a preempted exit) need not wait up to a minute for the iterator's destructor:
      batches.close()  # ends numpy_batches, which lets go of it on a thread, even while a traceback holds fit's frame

  results = {}
  if config.eval.after_training:
    results = evaluate_lib.evaluate(state, run.builder, config, preprocessing_mode=run.preprocessing_mode,
                                    workdir=workdir, writer=writer, step=max(start_step, last_step))
  writer.close()
  run.manager.close()
  return results


class NoCheckpointError(checkpointing.NoCheckpointError, errors.UserError):
  """``--mode=eval`` on a workdir that holds no checkpoint."""


def evaluate_workdir(config: ml_collections.ConfigDict, workdir: str, *,
                     allow_config_change: bool = False) -> dict[str, Any]:
  """``--mode=eval``: evaluates the latest checkpoint of ``workdir`` without training.

  ``config`` must describe the model that wrote the checkpoint: it is compared
  with ``<workdir>/config.json`` (differences that change training are refused
  unless ``allow_config_change``); evaluation settings (``config.eval``) may differ freely.

  Raises:
    NoCheckpointError: ``workdir`` holds no checkpoint (checked before any data is read).
    errors.UserError: as :func:`train_and_evaluate`.
  """
  checkpoint_dir = _checkpoint_dir(workdir)
  if not checkpointing.has_checkpoint(checkpoint_dir):
    raise NoCheckpointError(
        f'No checkpoint in {checkpoint_dir}: --mode=eval evaluates a trained workdir. Train first '
        '(--mode=train, the default) or pass the --workdir of a finished run.')
  run = _set_up(config, workdir, mode='eval', allow_config_change=allow_config_change)
  startup.log_summary(startup.summary_lines(config, run.builder, workdir=workdir, start_step=int(run.state.step),
                                            last_step=int(run.state.step), preprocessing_mode=run.preprocessing_mode))
  writer = writer_lib.create_writer(workdir)
  results = evaluate_lib.evaluate(parallel.replicate(run.state), run.builder, config,
                                  preprocessing_mode=run.preprocessing_mode, workdir=workdir, writer=writer,
                                  step=int(run.state.step))
  writer.close()
  run.manager.close()
  return results
