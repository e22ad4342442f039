"""What a ported backbone is, from its JSON alone: ``<dir>/scfa_backbone.json``.

``python -m scfa_jax.tools.port_weights`` writes the JSON beside the weights
(``models.pretrained`` reads and writes those). Everything here reads only the
JSON, with neither TensorFlow, JAX nor orbax imported, so ``main`` refuses
weights of another model, or an explicit pixel normalisation they contradict,
in about a second, before those imports; training checks again with the same
functions.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import ml_collections

from scfa_jax import errors
from scfa_jax.data import preprocessing

METADATA_FILE = 'scfa_backbone.json'
FORMAT_VERSION = 1
PREPROCESSING_MODES = preprocessing.MODES
REQUIRED_FIELDS = ('format_version', 'architecture', 'depth', 'width', 'variant', 'preprocessing', 'source',
                   'sha256')
PORT_COMMAND = 'python -m scfa_jax.tools.port_weights --source {torchvision|keras} --input FILE --output DIR'


def read(init_from: str) -> dict[str, Any]:
  """Reads ``<init_from>/scfa_backbone.json``.

  Args:
    init_from: a directory written by ``scfa_jax.tools.port_weights``.

  Returns:
    The metadata: format_version, architecture ('resnet'), depth, width,
    variant ('v1.5' | 'v1'), preprocessing ('imagenet' | 'caffe'), source,
    source_file, sha256 and num_classes (of the ported head; 0 for none).

  Raises:
    errors.MissingFilesError: the JSON is missing (not a ported backbone).
    errors.BadFilesError: the JSON is unreadable, lacks fields or describes something else.
  """
  path = os.path.join(init_from, METADATA_FILE)
  if not os.path.isfile(path):
    raise errors.MissingFilesError(
        f'{path} not found: config.model.init_from={init_from!r} is not a directory written by the weight '
        f'porter. Create one with `{PORT_COMMAND}` and set init_from to its --output.')
  try:
    with open(path) as f:
      metadata = json.load(f)
  except (OSError, json.JSONDecodeError) as err:
    raise errors.BadFilesError(
        f'{path} is not valid JSON ({err}); port the weights again with `{PORT_COMMAND}`.') from err
  missing = [k for k in REQUIRED_FIELDS if k not in metadata] if isinstance(metadata, dict) else REQUIRED_FIELDS
  if missing:
    raise errors.BadFilesError(
        f'{path} lacks the fields {list(missing)}; port the weights again with `{PORT_COMMAND}`.')
  if metadata['format_version'] > FORMAT_VERSION:
    raise errors.BadFilesError(
        f'{path} has format_version {metadata["format_version"]}, newer than this scfa_jax reads '
        f'({FORMAT_VERSION}); update scfa_jax or port the weights again.')
  if metadata['architecture'] != 'resnet':
    raise errors.BadFilesError(
        f'{path} describes a {metadata["architecture"]!r} backbone; the SCFA encoder is a ResNet.')
  if metadata['preprocessing'] not in PREPROCESSING_MODES:
    raise errors.BadFilesError(f'{path}: unknown preprocessing {metadata["preprocessing"]!r}; expected one of '
                               f'{PREPROCESSING_MODES}.')
  return metadata


def describe(metadata: Mapping[str, Any]) -> str:
  """'ResNet-50 (v1.5, width 64)' for messages."""
  return f'ResNet-{metadata["depth"]} ({metadata["variant"]}, width {metadata["width"]})'


def check_architecture(metadata: Mapping[str, Any], model_config: ml_collections.ConfigDict, init_from: str) -> None:
  """Raises a ConfigError if the ported backbone is not the encoder ``config.model`` describes."""
  problems = []
  for field in ('depth', 'width', 'variant'):
    if metadata[field] != model_config[field]:
      problems.append(f'config.model.{field}={model_config[field]!r} but the checkpoint has {field} '
                      f'{metadata[field]!r} (set config.model.{field}={metadata[field]!r})')
  if problems:
    raise errors.ConfigError(
        f'config.model.init_from={init_from!r} holds a {describe(metadata)} ported from '
        f'{metadata.get("source_file", metadata["source"])}, which does not fit config.model: '
        + '; '.join(problems) + '. Alternatively port weights of the configured architecture with '
        f'`{PORT_COMMAND}`.')


def preprocessing_for(model_config: ml_collections.ConfigDict, requested: str) -> str:
  """Resolves ``config.data.preprocessing`` against the ported weights.

  Args:
    model_config: ``config.model``; ``init_from`` may be empty.
    requested: 'auto', or an explicit 'imagenet' | 'caffe' | 'unit'.

  Returns:
    'auto' gives the checkpoint's preprocessing when ``init_from`` is set and
    'imagenet' otherwise; an explicit mode is returned as is.

  Raises:
    errors.ConfigError: an unknown mode, or an explicit mode that contradicts
      the preprocessing the ported weights were trained with.
  """
  if requested != 'auto' and requested not in PREPROCESSING_MODES:
    raise errors.ConfigError(f'config.data.preprocessing={requested!r}; expected auto or one of {PREPROCESSING_MODES}.')
  if not model_config.init_from:
    return 'imagenet' if requested == 'auto' else requested
  expected = read(model_config.init_from)['preprocessing']
  if requested not in ('auto', expected):
    raise errors.ConfigError(
        f'config.data.preprocessing={requested!r} contradicts {os.path.join(model_config.init_from, METADATA_FILE)}: '
        f'those weights expect {expected!r} inputs. Set config.data.preprocessing=auto (or {expected!r}).')
  return expected
