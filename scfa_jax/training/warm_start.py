"""``config.model.init_from=<workdir>``: start a run from the encoder another run trained.

The semi-supervised workflow in one flag: pre-train without labels
(``loss.positives='video'``), then train supervised or fine-tune
(``loss.name='cross_entropy'``) on a labelled fraction from that workdir.
``init_from`` still takes ported ImageNet weights (``models.pretrained``); a
folder holding ``config.json`` and ``checkpoints/`` is a workdir instead
(``training.init_from`` tells them apart and checks either from its JSON).

Every parameter (and BatchNorm statistic) whose name and shape the two models
share is copied: the encoder always (a mismatch is a one-line error naming the
workdir), the projection head when its sizes agree. A classifier is never
copied: the new run's labels need a fresh head. The newest intact checkpoint
is read (``inference.workdir``), without touching the workdir.
"""

from __future__ import annotations

import logging
from typing import Any

import ml_collections
from flax import traverse_util

from scfa_jax import errors
from scfa_jax.inference import workdir as workdir_lib
from scfa_jax.training import init_from as init_from_lib

ENCODER = 'encoder'


def load(variables: dict[str, Any], config: ml_collections.ConfigDict) -> dict[str, Any]:
  """``variables`` (the new model's initialisation) with the workdir's trained encoder (and matching heads).

  Raises:
    errors.ConfigError: the workdir's encoder does not fit (``init_from.check_encoder``).
    workdir_lib.WorkdirError: no intact checkpoint.
  """
  init_from = config.model.init_from
  init_from_lib.check_encoder(config.model)
  saved = workdir_lib.load_config(init_from)
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
