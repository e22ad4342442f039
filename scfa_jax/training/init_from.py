"""``config.model.init_from``: what it names, whether it fits, and which pixels it expects, from JSON alone.

It names ported ImageNet weights (a folder holding ``scfa_backbone.json``:
``models.backbone_metadata``) or a training workdir (``config.json`` and
``checkpoints/``: ``training.warm_start`` copies its encoder). Everything here
reads only those JSON files, with neither TensorFlow, JAX nor orbax imported,
so ``main`` refuses an init_from that cannot work in about a second, before
those imports; training checks again with the same functions and then loads.
"""

from __future__ import annotations

import os

import ml_collections

from scfa_jax import errors
from scfa_jax.models import backbone_metadata
from scfa_jax.training import workdir_config

# The model fields that decide the encoder's parameters; each must match the workdir's.
ENCODER_FIELDS = ('depth', 'width', 'variant', 'separate_pathways')


def is_workdir(init_from: str) -> bool:
  """Whether ``init_from`` is a training workdir (config.json + checkpoints/) rather than ported weights."""
  return bool(init_from) and os.path.isfile(os.path.join(init_from, workdir_config.CONFIG_FILE))


def check(config: ml_collections.ConfigDict) -> None:
  """Raises a one-line UserError unless ``config.model.init_from`` (if set) can start this run.

  Raises:
    errors.ConfigError: the weights or the workdir's encoder are another architecture, or an explicit
      ``data.preprocessing`` contradicts the weights.
    errors.MissingFilesError, errors.BadFilesError: neither ported weights nor a trained workdir.
  """
  check_encoder(config.model)
  preprocessing(config)  # an explicit mode that contradicts the weights


def check_encoder(model_config: ml_collections.ConfigDict) -> None:
  """:func:`check` without the pixels: the encoder ``model_config.init_from`` holds is the one it describes."""
  init_from = model_config.init_from
  if is_workdir(init_from):
    saved = workdir_config.read(init_from).model
    differ = [f'{field}={model_config.get(field)!r} here, {saved.get(field)!r} there' for field in ENCODER_FIELDS
              if model_config.get(field) != saved.get(field)]
    if differ:
      raise errors.ConfigError(
          f'config.model.init_from={init_from!r} is a workdir whose encoder does not fit config.model '
          f'({"; ".join(differ)}): set those config.model fields to its values, or pick another workdir.')
    if not os.path.isdir(os.path.join(init_from, 'checkpoints')):
      raise errors.MissingFilesError(f'config.model.init_from={init_from!r} holds config.json but no checkpoints/: '
                                     'train that workdir first, or pass the workdir of a finished run.')
  elif init_from:
    backbone_metadata.check_architecture(backbone_metadata.read(init_from), model_config, init_from)


def preprocessing(config: ml_collections.ConfigDict) -> str:
  """The pixel normalisation of ``config``'s inputs: ``data.preprocessing``, or for 'auto' what the encoder
  ``model.init_from`` names was trained with (a workdir's own init_from resolved in turn; else 'imagenet')."""
  if not is_workdir(config.model.init_from):
    return backbone_metadata.preprocessing_for(config.model, config.data.preprocessing)
  if config.data.preprocessing != 'auto':
    return config.data.preprocessing
  return preprocessing(workdir_config.read(config.model.init_from))
