"""The few lines a run prints before its first step: what is trained, on what, where, and how to watch it.

Pure formatting of values the run already has, so that the console, the tests
and a notebook show the same summary.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Optional

import jax
import ml_collections
import tensorflow_datasets as tfds

from scfa_jax.data import input_pipeline
from scfa_jax.data import labels as labels_lib
from scfa_jax.data import pretext


def command_line(config_file: Optional[str], overrides: Mapping[str, Any]) -> str:
  """``config <file>, overrides: a=1, b=2`` (or ``no overrides``)."""
  changed = ', '.join(f'{key}={value!r}' for key, value in sorted(overrides.items()))
  return f'config {config_file or "(built in Python)"}, ' + (f'overrides: {changed}' if changed else 'no overrides')


def devices_line(config: ml_collections.ConfigDict) -> str:
  """Devices, hosts and how the global batch is split over them."""
  devices = jax.devices()
  kind = devices[0].device_kind if devices[0].platform != 'cpu' else 'CPU'
  per_device = config.train.batch_size // max(len(devices), 1)
  return (f'devices: {len(devices)} x {kind} ({jax.local_device_count()} local) on {jax.process_count()} '
          f'host(s); batch: {config.train.batch_size} videos global, {per_device} per device'
          + views_phrase(config.data, pretext.Spec.from_config(config.loss)))


def views_phrase(data_config: ml_collections.ConfigDict, pretext_spec: Optional[pretext.Spec]) -> str:
  """What a training step encodes of each video: `` (4 views each)``, local views, fused samples, the pretext view."""
  num_global, num_local = input_pipeline.view_counts(data_config)
  extra = pretext_spec is not None
  if input_pipeline.is_fused(data_config):
    samples = _count(num_global, 'sample') + (' + 1 pretext sample' if extra else '')
    return f' ({samples} each); every sample fuses {1 + num_local} images (1 global grid + {num_local} local)'
  if num_global + num_local + extra == 1:
    return ''
  views = _count(num_global, 'view') if not num_local else f'{num_global} global + {_count(num_local, "local view")}'
  return f' ({views}' + (' + 1 pretext view' if extra else '') + ' each)'


def _count(n: int, noun: str) -> str:
  return f'{n} {noun}' + ('' if n == 1 else 's')


def summary_lines(config: ml_collections.ConfigDict, builder: tfds.core.DatasetBuilder, *, workdir: str,
                  start_step: int, last_step: int, preprocessing_mode: str, keep: Any = None) -> list[str]:
  """Dataset and split sizes, devices and batch, steps and epochs, grid, workdir and the TensorBoard command.

  ``keep``: the train split's positions trained on (the labelled fraction), None = all.
  """
  data = config.data
  splits = builder.info.splits
  classes = (f'{len(labels_lib.class_names(builder.info))} classes' if labels_lib.has_labels(builder.info)
             else 'no labels')
  sizes = ', '.join(f'{splits[s].num_examples} {s}' for s in (data.train_split, data.test_split) if s in splits)
  if labels_lib.fraction_of(config) < 1.0 and labels_lib.has_labels(builder.info):
    sizes += f' (label_fraction {labels_lib.fraction_of(config):g}: ' + (
        f'trains on {len(keep)} labelled)' if keep is not None else 'labels unread in training)')
  local_batch = config.train.batch_size // jax.process_count()
  per_epoch = input_pipeline.steps_per_epoch(builder, data.train_split, local_batch, keep=keep)
  total = config.train.num_epochs * per_epoch
  if start_step >= last_step:
    progress = f'already at step {start_step}: nothing to train'
  elif start_step > 0:
    progress = f'resuming at step {start_step}'
  else:
    progress = 'starting at step 0'
  stop = f', stopping at step {last_step} (train.max_steps)' if last_step < total else ''
  return [
      f'dataset {builder.info.full_name}: {classes}, {sizes} videos',
      devices_line(config),
      f'training: {config.loss.name}, {per_epoch} steps/epoch x {config.train.num_epochs} epochs = {total} steps'
      f'{stop}; {progress}',
      f'model: ResNet-{config.model.depth} width {config.model.width}, {config.model.dtype}; grid '
      f'{data.grid_rows}x{data.grid_cols} tiles of {data.tile_size} px; preprocessing {preprocessing_mode}',
      f'workdir {workdir}; watch it with: tensorboard --logdir {workdir}',
  ]


def log_summary(lines: list[str]) -> None:
  """Logs the summary on process 0 only (every host would print the same)."""
  if jax.process_index() == 0:
    for line in lines:
      logging.info(line)
