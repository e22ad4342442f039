"""Ported ImageNet backbones: the on-disk format and loading them into a run.

``python -m scfa_jax.tools.port_weights`` writes a directory::

  <dir>/backbone/           orbax checkpoint {'params': ..., 'batch_stats': ...}
                            of a ``resnet.ResNet`` (with its 1000-class 'head'
                            when the source file had one)
  <dir>/scfa_backbone.json  what the weights are: depth, width, variant, the
                            pixel preprocessing they expect, source and sha256

``config.model.init_from=<dir>`` loads the backbone into the SCFA encoder
(:func:`load_encoder`) and ``config.data.preprocessing='auto'`` takes the pixel
normalisation from the JSON (:func:`preprocessing_for`), so weights and inputs
cannot be mismatched. Nothing here touches the network.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

from absl import logging
from flax import traverse_util
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from scfa_jax import errors
from scfa_jax.data import preprocessing

METADATA_FILE = 'scfa_backbone.json'
CHECKPOINT_DIR = 'backbone'
FORMAT_VERSION = 1
PREPROCESSING_MODES = preprocessing.MODES
_REQUIRED_METADATA = ('format_version', 'architecture', 'depth', 'width', 'variant', 'preprocessing', 'source',
                      'sha256')
_PORT_COMMAND = 'python -m scfa_jax.tools.port_weights --source {torchvision|keras} --input FILE --output DIR'
_MAX_LISTED = 8


def save_backbone(directory: str, variables: Mapping[str, Any], metadata: Mapping[str, Any], *,
                  overwrite: bool = False) -> None:
  """Writes ``variables`` (a ResNet's params and batch_stats) and the metadata JSON.

  The JSON is written last, so a directory whose save was interrupted has no
  JSON and is refused by :func:`read_metadata` instead of loading half a model.

  Args:
    directory: output directory (created).
    variables: {'params': ..., 'batch_stats': ...} of a ``resnet.ResNet``.
    metadata: at least the keys in ``_REQUIRED_METADATA``.
    overwrite: replace an existing ported backbone in ``directory``.

  Raises:
    FileExistsError: ``directory`` already holds a backbone and not ``overwrite``.
  """
  missing = [k for k in _REQUIRED_METADATA if k not in metadata]
  if missing:
    raise ValueError(f'Backbone metadata lacks {missing}.')
  directory = os.path.abspath(directory)
  meta_path = os.path.join(directory, METADATA_FILE)
  ckpt_path = os.path.join(directory, CHECKPOINT_DIR)
  if not overwrite and (os.path.exists(meta_path) or os.path.exists(ckpt_path)):
    raise FileExistsError(f'{directory} already holds a ported backbone; choose another --output or pass --overwrite.')
  if os.path.exists(meta_path):
    os.remove(meta_path)
  os.makedirs(directory, exist_ok=True)
  tree = {'params': dict(variables['params']), 'batch_stats': dict(variables['batch_stats'])}
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(ckpt_path, tree, force=overwrite)  # asynchronous; done when the block exits
  with open(meta_path, 'w') as f:
    json.dump(dict(metadata), f, indent=2, sort_keys=True)
    f.write('\n')


def read_metadata(init_from: str) -> dict[str, Any]:
  """Reads ``<init_from>/scfa_backbone.json``.

  Args:
    init_from: a directory written by ``scfa_jax.tools.port_weights``.

  Returns:
    The metadata: format_version, architecture ('resnet'), depth, width,
    variant ('v1.5' | 'v1'), preprocessing ('imagenet' | 'caffe'), source,
    source_file, sha256 and num_classes (of the ported head; 0 for none).

  Raises:
    FileNotFoundError: the JSON is missing (not a ported backbone).
    ValueError: the JSON is unreadable or lacks fields.
  """
  path = os.path.join(init_from, METADATA_FILE)
  if not os.path.isfile(path):
    raise errors.MissingFilesError(
        f'{path} not found: config.model.init_from={init_from!r} is not a directory written by the weight '
        f'porter. Create one with `{_PORT_COMMAND}` and set init_from to its --output.')
  try:
    with open(path) as f:
      metadata = json.load(f)
  except (OSError, json.JSONDecodeError) as err:
    raise errors.BadFilesError(
        f'{path} is not valid JSON ({err}); port the weights again with `{_PORT_COMMAND}`.') from err
  missing = [k for k in _REQUIRED_METADATA if k not in metadata] if isinstance(metadata, dict) else _REQUIRED_METADATA
  if missing:
    raise errors.BadFilesError(
        f'{path} lacks the fields {list(missing)}; port the weights again with `{_PORT_COMMAND}`.')
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


def restore_backbone(init_from: str) -> dict[str, Any]:
  """Restores the ported ResNet variables (numpy arrays, 'head' included if ported)."""
  path = os.path.join(os.path.abspath(init_from), CHECKPOINT_DIR)
  if not os.path.isdir(path):
    raise errors.MissingFilesError(
        f'{path} not found: the ported backbone in {init_from} is incomplete; port the weights '
        f'again with `{_PORT_COMMAND}`.')
  with ocp.StandardCheckpointer() as checkpointer:
    tree = checkpointer.restore(path)
  if not isinstance(tree, Mapping) or set(tree) != {'params', 'batch_stats'}:
    found = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
    raise errors.BadFilesError(
        f'{path} holds {found}, not a ResNet backbone {{params, batch_stats}}; port the weights again '
        f'with `{_PORT_COMMAND}`.')
  return {k: dict(v) for k, v in tree.items()}


def describe(metadata: Mapping[str, Any]) -> str:
  """'ResNet-50 (v1.5, width 64)' for messages."""
  return f'ResNet-{metadata["depth"]} ({metadata["variant"]}, width {metadata["width"]})'


def check_architecture(metadata: Mapping[str, Any], model_config: ml_collections.ConfigDict, init_from: str) -> None:
  """Raises if the ported backbone is not the encoder ``config.model`` describes."""
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
        f'`{_PORT_COMMAND}`.')


def compare_trees(found: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
  """Lists missing, unexpected and mis-shaped leaves of ``found`` against ``expected``.

  Both are nested dicts of arrays (or ShapeDtypeStructs); paths are '/'-joined.

  Returns:
    Human-readable problem lines; empty when the trees match in keys and shapes.
  """
  found_flat = traverse_util.flatten_dict(dict(found), sep='/')
  expected_flat = traverse_util.flatten_dict(dict(expected), sep='/')
  missing = sorted(set(expected_flat) - set(found_flat))
  unexpected = sorted(set(found_flat) - set(expected_flat))
  misshaped = [f'{k}: {tuple(np.shape(found_flat[k]))} instead of {tuple(np.shape(expected_flat[k]))}'
               for k in sorted(set(found_flat) & set(expected_flat))
               if tuple(np.shape(found_flat[k])) != tuple(np.shape(expected_flat[k]))]
  lines = []
  for label, items in (('missing', missing), ('unexpected', unexpected), ('mis-shaped', misshaped)):
    if items:
      shown = ', '.join(items[:_MAX_LISTED])
      more = f' ... and {len(items) - _MAX_LISTED} more' if len(items) > _MAX_LISTED else ''
      lines.append(f'{label} ({len(items)}): {shown}{more}')
  return lines


def load_encoder(variables: dict, model_config: ml_collections.ConfigDict) -> dict:
  """Replaces the encoder's params and batch_stats with the ported backbone.

  The projection head (and classifier, if any) keep their fresh
  initialisation; the ported 1000-class ImageNet 'head' is dropped because
  the SCFA encoder has none. Everything is checked before anything is
  replaced, so a mismatch stops a run before its first step.

  Args:
    variables: the SCFA model's initialised variables,
      {'params': {'encoder': ..., 'projection': ..., ...},
       'batch_stats': {'encoder': ...}}.
    model_config: ``config.model`` with ``init_from`` set.

  Returns:
    New variables with params['encoder'] and batch_stats['encoder'] from the
    checkpoint (same dtypes as ``variables``); other entries unchanged.

  Raises:
    FileNotFoundError: ``init_from`` is not a ported backbone directory.
    ValueError: its architecture or any array shape differs from the model.
  """
  init_from = model_config.init_from
  if not init_from:
    raise ValueError('load_encoder needs config.model.init_from (a directory written by the weight porter).')
  metadata = read_metadata(init_from)
  check_architecture(metadata, model_config, init_from)
  tree = restore_backbone(init_from)
  params = {k: v for k, v in tree['params'].items() if k != 'head'}
  problems = (compare_trees(params, variables['params']['encoder']) +
              [f'batch_stats {line}' for line in compare_trees(tree['batch_stats'], variables['batch_stats']['encoder'])])
  if problems:
    raise errors.BadFilesError(f'The backbone in {init_from} ({describe(metadata)}) does not fit the encoder of '
                               f'config.model: ' + '; '.join(problems) +
                               f'. Port the weights again with `{_PORT_COMMAND}`.')

  def cast_like(init_tree: Any, loaded_tree: Mapping[str, Any]) -> dict:
    flat_init = traverse_util.flatten_dict(dict(init_tree))
    flat_loaded = traverse_util.flatten_dict(dict(loaded_tree))
    return traverse_util.unflatten_dict({k: np.asarray(flat_loaded[k], dtype=v.dtype) for k, v in flat_init.items()})

  new = dict(variables)
  new['params'] = {**variables['params'], 'encoder': cast_like(variables['params']['encoder'], params)}
  new['batch_stats'] = {**variables['batch_stats'],
                        'encoder': cast_like(variables['batch_stats']['encoder'], tree['batch_stats'])}
  logging.info('Loaded %s from %s (%s, sha256 %s); projection head freshly initialised.', describe(metadata), init_from,
               metadata.get('source_file', metadata['source']), metadata['sha256'][:12])
  return new


def preprocessing_for(model_config: ml_collections.ConfigDict, requested: str) -> str:
  """Resolves ``config.data.preprocessing`` against the ported weights.

  Args:
    model_config: ``config.model``; ``init_from`` may be empty.
    requested: 'auto', or an explicit 'imagenet' | 'caffe' | 'unit'.

  Returns:
    'auto' gives the checkpoint's preprocessing when ``init_from`` is set and
    'imagenet' otherwise; an explicit mode is returned as is.

  Raises:
    ValueError: an unknown mode, or an explicit mode that contradicts the
      preprocessing the ported weights were trained with.
  """
  if requested != 'auto' and requested not in PREPROCESSING_MODES:
    raise errors.ConfigError(f'config.data.preprocessing={requested!r}; expected auto or one of {PREPROCESSING_MODES}.')
  if not model_config.init_from:
    return 'imagenet' if requested == 'auto' else requested
  expected = read_metadata(model_config.init_from)['preprocessing']
  if requested not in ('auto', expected):
    raise errors.ConfigError(
        f'config.data.preprocessing={requested!r} contradicts {os.path.join(model_config.init_from, METADATA_FILE)}: '
        f'those weights expect {expected!r} inputs. Set config.data.preprocessing=auto (or {expected!r}).')
  return expected
