"""``config.model.init_from=<workdir>``: start a run from the encoder another run trained.

The semi-supervised workflow in one flag: pre-train without labels
(``loss.positives='video'``), then train supervised or fine-tune
(``loss.name='cross_entropy'``) on a labelled fraction from that workdir.
``init_from`` still takes ported ImageNet weights (``models.pretrained``); a
folder holding ``config.json`` and ``checkpoints/`` is a workdir instead.

Every parameter (and BatchNorm statistic) whose name and shape the two models
share is copied: the encoder always (a mismatch is a one-line error naming the
workdir), the projection head when its sizes agree. A classifier is never
copied: the new run's labels need a fresh head. The newest intact checkpoint
is read (``inference.workdir``), without touching the workdir.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import ml_collections
from flax import traverse_util

from scfa_jax import errors
from scfa_jax.inference import workdir as workdir_lib
from scfa_jax.models import pretrained
from scfa_jax.training import workdir_config

# The model fields that decide the encoder's parameters; each must match the workdir's.
ENCODER_FIELDS = ('depth', 'width', 'variant', 'separate_pathways')
ENCODER = 'encoder'


def is_workdir(init_from: str) -> bool:
  """Whether ``init_from`` is a training workdir (config.json + checkpoints/) rather than ported weights."""
  return bool(init_from) and os.path.isfile(os.path.join(init_from, workdir_config.CONFIG_FILE))


def saved_config(init_from: str) -> ml_collections.ConfigDict:
  return workdir_lib.load_config(init_from)


def check(config: ml_collections.ConfigDict, init_from: str) -> None:
  """Raises a one-line ConfigError unless the workdir's encoder is the one ``config.model`` describes."""
  saved = saved_config(init_from).model
  differ = [f'{field}={config.model.get(field)!r} here, {saved.get(field)!r} there' for field in ENCODER_FIELDS
            if config.model.get(field) != saved.get(field)]
  if differ:
    raise errors.ConfigError(
        f'config.model.init_from={init_from!r} is a workdir whose encoder does not fit config.model '
        f'({"; ".join(differ)}): set those config.model fields to its values, or pick another workdir.')
  if not os.path.isdir(os.path.join(init_from, 'checkpoints')):
    raise errors.MissingFilesError(f'config.model.init_from={init_from!r} holds config.json but no checkpoints/: '
                                   'train that workdir first, or pass the workdir of a finished run.')


def preprocessing(init_from: str) -> str:
  """The pixel normalisation the workdir's encoder was trained with (its own init_from resolved in turn)."""
  saved = saved_config(init_from)
  if is_workdir(saved.model.init_from):
    return preprocessing(saved.model.init_from) if saved.data.preprocessing == 'auto' else saved.data.preprocessing
  return pretrained.preprocessing_for(saved.model, saved.data.preprocessing)


def load(variables: dict[str, Any], config: ml_collections.ConfigDict) -> dict[str, Any]:
  """``variables`` (the new model's initialisation) with the workdir's trained encoder (and matching heads).

  Raises:
    errors.ConfigError: the workdir's encoder does not fit (see :func:`check`).
    workdir_lib.WorkdirError: no intact checkpoint.
  """
  init_from = config.model.init_from
  check(config, init_from)
  saved = saved_config(init_from)
  names = workdir_lib.class_names(init_from) or ()
  restored = workdir_lib.restore_encoder(init_from, saved, num_classes=len(names))
  new = {'params': dict(variables['params']), 'batch_stats': dict(variables.get('batch_stats', {}))}
  copied, skipped = [], []
  for collection in ('params', 'batch_stats'):
    source = restored.variables.get(collection, {})
    for name, value in source.items():
      if name.startswith('classifier') or name not in new[collection]:
        continue
      if _shapes(value) != _shapes(new[collection][name]):
        if name == ENCODER:
          raise errors.ConfigError(f'config.model.init_from={init_from!r}: its encoder {collection} do not fit '
                                   'config.model (different shapes); pass a workdir trained with this model.')
        skipped.append(name)
        continue
      new[collection][name] = value
      copied.append(f'{collection}/{name}')
  if 'params/encoder' not in copied:
    raise errors.ConfigError(f'config.model.init_from={init_from!r}: its checkpoint holds no encoder parameters.')
  logging.info('Initialised from %s (step %d, %s): copied %s%s.', init_from, restored.step, restored.checkpoint,
               ', '.join(copied), f'; fresh (other shapes): {", ".join(sorted(set(skipped)))}' if skipped else '')
  return new


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
  flat = traverse_util.flatten_dict(dict(tree), sep='/') if isinstance(tree, dict) else {'': tree}
  return {k: tuple(getattr(v, 'shape', ())) for k, v in flat.items()}
