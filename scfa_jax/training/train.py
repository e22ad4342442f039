"""train_and_evaluate: dataset -> views -> grids -> pmapped SupCon steps -> checkpoints -> evaluation.

The one function behind ``python -m scfa_jax.main`` and the Colab notebooks.
Side effects (TensorBoard writer, checkpoint manager, console progress) live
here; everything numeric is in pure modules it composes.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm
from clu import metric_writers

from scfa_jax import datasets
from scfa_jax.data import input_pipeline
from scfa_jax.evaluation import evaluate as evaluate_lib
from scfa_jax.models import scfa
from scfa_jax.training import checkpointing
from scfa_jax.training import parallel
from scfa_jax.training import steps


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Fails fast, before any data is read, on settings that cannot work."""
  if not config.data.name:
    raise ValueError('config.data.name is not set: name a dataset (e.g. --config.data.name=hmdb51).')
  if config.train.batch_size % jax.device_count():
    raise ValueError(f'config.train.batch_size={config.train.batch_size} must be divisible by the '
                     f'{jax.device_count()} devices.')
  if not 1 <= config.data.grid_rows <= 8 or not 1 <= config.data.grid_cols <= 8:
    raise ValueError(f'Grid {config.data.grid_rows}x{config.data.grid_cols} is outside 1x1..8x8.')
  if config.loss.name not in ('supcon', 'cross_entropy'):
    raise ValueError(f"config.loss.name must be 'supcon' or 'cross_entropy', got {config.loss.name!r}.")


def learning_rate_schedule(optim_config: ml_collections.ConfigDict, *, steps_per_epoch: int,
                           total_steps: int) -> optax.Schedule:
  """Linear warm-up to the peak, then cosine decay to ``peak * end_learning_rate_factor``."""
  warmup = min(int(round(optim_config.warmup_epochs * steps_per_epoch)), max(total_steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=optim_config.learning_rate, warmup_steps=warmup,
      decay_steps=max(total_steps, warmup + 1), end_value=optim_config.learning_rate * optim_config.end_learning_rate_factor)


def create_optimizer(optim_config: ml_collections.ConfigDict, schedule: optax.Schedule) -> optax.GradientTransformation:
  """Adam (AdamW when weight decay is set), optionally after global-norm clipping."""
  if optim_config.weight_decay:
    adam = optax.adamw(schedule, weight_decay=optim_config.weight_decay)
  else:
    adam = optax.adam(schedule)
  if optim_config.grad_clip_norm:
    return optax.chain(optax.clip_by_global_norm(optim_config.grad_clip_norm), adam)
  return adam


def create_train_state(rng: jax.Array, model: scfa.SCFAModel, image_shape: tuple[int, int, int],
                       tx: optax.GradientTransformation, model_config: ml_collections.ConfigDict) -> steps.TrainState:
  """Initialises parameters on the host (loading ported weights when configured)."""
  variables = jax.jit(functools.partial(model.init, train=False))(rng, jnp.zeros((1,) + image_shape, jnp.float32))
  variables = jax.device_get(variables)
  if model_config.init_from:
    from scfa_jax.models import pretrained  # pylint: disable=g-import-not-at-top
    variables = pretrained.load_encoder(variables, model_config)
  state = steps.TrainState.create(apply_fn=model.apply, params=variables['params'], tx=tx,
                                  batch_stats=variables.get('batch_stats', {}))
  # Host copies: replicate() then makes fresh device buffers that the step may donate.
  return jax.device_get(state)


def resolve_preprocessing(config: ml_collections.ConfigDict) -> str:
  """The pixel normalisation the backbone expects (from the ported weights' metadata when present)."""
  if config.model.init_from:
    from scfa_jax.models import pretrained  # pylint: disable=g-import-not-at-top
    return pretrained.preprocessing_for(config.model, config.data.preprocessing)
  return 'imagenet' if config.data.preprocessing == 'auto' else config.data.preprocessing


class Progress:
  """Console progress: a live bar on a terminal, plus a log line every ``log_every`` steps."""

  def __init__(self, *, start_step: int, total_steps: int, grids_per_step: int, enabled: bool):
    self.total_steps = total_steps
    self.grids_per_step = grids_per_step
    self.enabled = enabled
    self._last_step, self._last_time = start_step, time.perf_counter()
    self._bar = None
    if enabled and sys.stderr.isatty():
      self._bar = tqdm.tqdm(total=total_steps, initial=start_step, unit='step', dynamic_ncols=True)

  def update(self, step: int, scalars: dict[str, float]) -> dict[str, float]:
    """Records a log step; returns throughput scalars for the writer."""
    now = time.perf_counter()
    steps_per_s = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_step, self._last_time = step, now
    rates = {'steps_per_s': steps_per_s, 'grids_per_s': steps_per_s * self.grids_per_step}
    if self.enabled:
      eta = (self.total_steps - step) / max(steps_per_s, 1e-9)
      line = (f'step {step}/{self.total_steps} ({100 * step / self.total_steps:.0f}%) | loss {scalars["loss"]:.4f} | '
              f'{rates["grids_per_s"]:.1f} grids/s | ETA {time.strftime("%H:%M:%S", time.gmtime(eta))}')
      if self._bar is not None:
        self._bar.update(step - self._bar.n)
        self._bar.set_postfix_str(f'loss {scalars["loss"]:.4f}, {rates["grids_per_s"]:.0f} grids/s')
      logging.info(line)
    return rates

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains SCFA as configured, resuming from ``workdir`` if it holds checkpoints, then evaluates.

  Returns:
    The results dict that is also written to ``<workdir>/results.json`` (empty
    when ``config.eval.after_training`` is off).
  """
  validate_config(config)
  os.makedirs(workdir, exist_ok=True)
  is_host0 = jax.process_index() == 0
  builder = datasets.get_builder(config.data)
  num_classes = builder.info.features['label'].num_classes
  spec = input_pipeline.GridSpec.from_config(config.data)
  local_batch = config.train.batch_size // jax.process_count()
  steps_per_epoch = input_pipeline.steps_per_epoch(builder, config.data.train_split, local_batch)
  # The schedule always spans num_epochs; max_steps only stops early, so a run
  # stopped by it and resumed later follows the same learning-rate curve.
  total_steps = config.train.num_epochs * steps_per_epoch
  last_step = min(total_steps, config.train.max_steps) if config.train.max_steps > 0 else total_steps
  preprocessing_mode = resolve_preprocessing(config)
  logging.info('Dataset %s: %d classes, %d train steps/epoch, %d steps (stopping at %d); %d devices (%d local); '
               'grid %s; preprocessing %s', builder.info.full_name, num_classes, steps_per_epoch, total_steps, last_step,
               jax.device_count(),
               jax.local_device_count(), spec.image_shape, preprocessing_mode)

  model = scfa.create_model(config.model, num_classes=num_classes if config.loss.name == 'cross_entropy' else 0,
                            axis_name=parallel.AXIS)
  schedule = learning_rate_schedule(config.optim, steps_per_epoch=steps_per_epoch, total_steps=total_steps)
  state = create_train_state(jax.random.key(config.seed), model, spec.image_shape,
                             create_optimizer(config.optim, schedule), config.model)
  manager = checkpointing.create_manager(workdir, config.ckpt)
  state = checkpointing.restore_latest(manager, state)
  start_step = int(state.step)

  writer = metric_writers.create_default_writer(workdir, just_logging=not is_host0)
  if start_step == 0:
    writer.write_hparams({k: v for k, v in _flatten(config.to_dict()).items() if v is not None})
  state = parallel.replicate(state)

  if start_step < last_step:
    logging.info('Training from step %d to %d.', start_step, last_step)
    dataset = input_pipeline.create_train_dataset(builder, config.data, local_batch_size=local_batch,
                                                  seed=config.seed, start_step=start_step)
    batches = parallel.prefetch_to_device(dataset.as_numpy_iterator(), config.data.prefetch_to_device)
    p_train_step = parallel.pmap_step(
        functools.partial(steps.train_step, loss_config=config.loss, preprocessing_mode=preprocessing_mode,
                          learning_rate_fn=schedule), donate_state=True)
    progress = Progress(start_step=start_step, total_steps=last_step, grids_per_step=2 * config.train.batch_size,
                        enabled=is_host0)
    pending: list[dict[str, jax.Array]] = []
    for step in range(start_step + 1, last_step + 1):
      state, metrics = p_train_step(state, next(batches))
      pending.append(metrics)
      if step % config.train.log_every_steps == 0 or step == last_step:
        scalars = {k: float(np.mean([jax.device_get(m[k]) for m in pending])) for k in pending[-1]}
        pending = []
        if not math.isfinite(scalars['loss']):
          raise FloatingPointError(
              f'Loss is {scalars["loss"]} at step {step}. Lower config.optim.learning_rate, or set '
              'config.optim.grad_clip_norm; the last good checkpoint is in ' + str(manager.directory))
        scalars.update(progress.update(step, scalars))
        writer.write_scalars(step, {f'train/{k}': v for k, v in scalars.items()})
      if step % config.ckpt.every_steps == 0 or step == last_step:
        checkpointing.save(manager, step, state)
    progress.close()
    writer.flush()

  results = {}
  if config.eval.after_training:
    results = evaluate_lib.evaluate(state, builder, config, preprocessing_mode=preprocessing_mode, workdir=workdir,
                                    writer=writer, step=max(start_step, last_step))
  writer.close()
  manager.close()
  return results


def evaluate_workdir(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """``--mode=eval``: evaluates the latest checkpoint of ``workdir`` without training.

  ``config`` must describe the model that wrote the checkpoint (the config it
  was trained with); evaluation settings (``config.eval``) may differ freely.

  Raises:
    checkpointing.NoCheckpointError: ``workdir`` holds no checkpoint (checked before any data is read).
  """
  validate_config(config)
  checkpoint_dir = os.path.join(os.path.abspath(workdir), 'checkpoints')
  if not checkpointing.has_checkpoint(checkpoint_dir):
    raise checkpointing.NoCheckpointError(f'No checkpoint in {checkpoint_dir}: --mode=eval evaluates a trained workdir. Train first '
                            f'(--mode=train, the default) or pass the --workdir of a finished run.')
  builder = datasets.get_builder(config.data)
  num_classes = builder.info.features['label'].num_classes
  spec = input_pipeline.GridSpec.from_config(config.data)
  steps_per_epoch = input_pipeline.steps_per_epoch(builder, config.data.train_split,
                                                   config.train.batch_size // jax.process_count())
  model = scfa.create_model(config.model, num_classes=num_classes if config.loss.name == 'cross_entropy' else 0,
                            axis_name=parallel.AXIS)
  # The optimiser only gives the restored tree its structure; nothing is trained.
  schedule = learning_rate_schedule(config.optim, steps_per_epoch=steps_per_epoch,
                                    total_steps=config.train.num_epochs * steps_per_epoch)
  state = create_train_state(jax.random.key(config.seed), model, spec.image_shape,
                             create_optimizer(config.optim, schedule), config.model)
  manager = checkpointing.create_manager(workdir, config.ckpt)
  state = checkpointing.restore_latest(manager, state)
  writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() != 0)
  results = evaluate_lib.evaluate(parallel.replicate(state), builder, config,
                                  preprocessing_mode=resolve_preprocessing(config), workdir=workdir, writer=writer,
                                  step=int(state.step))
  writer.close()
  manager.close()
  return results


def _flatten(tree: dict, prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat
