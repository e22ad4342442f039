"""Ported ImageNet backbones: the on-disk format and loading them into a run.

``python -m scfa_jax.tools.port_weights`` writes a directory::

  <dir>/backbone/           orbax checkpoint {'params': ..., 'batch_stats': ...}
                            of a ``resnet.ResNet`` (with its 1000-class 'head'
                            when the source file had one)
  <dir>/scfa_backbone.json  what the weights are: depth, width, variant, the
                            pixel preprocessing they expect, source and sha256

``config.model.init_from=<dir>`` loads the backbone into the SCFA encoder
(:func:`load_encoder`) and ``config.data.preprocessing='auto'`` takes the pixel
normalisation from the JSON, so weights and inputs cannot be mismatched. The
JSON alone is read and checked by ``models.backbone_metadata`` (no JAX or
orbax: ``main`` checks it before those imports). Nothing here touches the network.
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
from scfa_jax.models import backbone_metadata

CHECKPOINT_DIR = 'backbone'
_MAX_LISTED = 8


def save_backbone(directory: str, variables: Mapping[str, Any], metadata: Mapping[str, Any], *,
                  overwrite: bool = False) -> None:
  """Writes ``variables`` (a ResNet's params and batch_stats) and the metadata JSON.

  The JSON is written last, so a directory whose save was interrupted has no
  JSON and is refused by ``backbone_metadata.read`` instead of loading half a model.

  Args:
    directory: output directory (created).
    variables: {'params': ..., 'batch_stats': ...} of a ``resnet.ResNet``.
    metadata: at least the keys in ``backbone_metadata.REQUIRED_FIELDS``.
    overwrite: replace an existing ported backbone in ``directory``.

  Raises:
    FileExistsError: ``directory`` already holds a backbone and not ``overwrite``.
  """
  missing = [k for k in backbone_metadata.REQUIRED_FIELDS if k not in metadata]
  if missing:
    raise ValueError(f'Backbone metadata lacks {missing}.')
  directory = os.path.abspath(directory)
  meta_path = os.path.join(directory, backbone_metadata.METADATA_FILE)
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


def restore_backbone(init_from: str) -> dict[str, Any]:
  """Restores the ported ResNet variables (numpy arrays, 'head' included if ported)."""
  path = os.path.join(os.path.abspath(init_from), CHECKPOINT_DIR)
  if not os.path.isdir(path):
    raise errors.MissingFilesError(
        f'{path} not found: the ported backbone in {init_from} is incomplete; port the weights '
        f'again with `{backbone_metadata.PORT_COMMAND}`.')
  with ocp.StandardCheckpointer() as checkpointer:
    tree = checkpointer.restore(path)
  if not isinstance(tree, Mapping) or set(tree) != {'params', 'batch_stats'}:
    found = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
    raise errors.BadFilesError(
        f'{path} holds {found}, not a ResNet backbone {{params, batch_stats}}; port the weights again '
        f'with `{backbone_metadata.PORT_COMMAND}`.')
  return {k: dict(v) for k, v in tree.items()}


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
  metadata = backbone_metadata.read(init_from)
  backbone_metadata.check_architecture(metadata, model_config, init_from)
  tree = restore_backbone(init_from)
  params = {k: v for k, v in tree['params'].items() if k != 'head'}
  problems = (compare_trees(params, variables['params']['encoder']) +
              [f'batch_stats {line}' for line in compare_trees(tree['batch_stats'], variables['batch_stats']['encoder'])])
  if problems:
    raise errors.BadFilesError(f'The backbone in {init_from} ({backbone_metadata.describe(metadata)}) does not fit '
                               f'the encoder of config.model: ' + '; '.join(problems) +
                               f'. Port the weights again with `{backbone_metadata.PORT_COMMAND}`.')

  def cast_like(init_tree: Any, loaded_tree: Mapping[str, Any]) -> dict:
    flat_init = traverse_util.flatten_dict(dict(init_tree))
    flat_loaded = traverse_util.flatten_dict(dict(loaded_tree))
    return traverse_util.unflatten_dict({k: np.asarray(flat_loaded[k], dtype=v.dtype) for k, v in flat_init.items()})

  new = dict(variables)
  new['params'] = {**variables['params'], 'encoder': cast_like(variables['params']['encoder'], params)}
  new['batch_stats'] = {**variables['batch_stats'],
                        'encoder': cast_like(variables['batch_stats']['encoder'], tree['batch_stats'])}
  logging.info('Loaded %s from %s (%s, sha256 %s); projection head freshly initialised.',
               backbone_metadata.describe(metadata), init_from, metadata.get('source_file', metadata['source']),
               metadata['sha256'][:12])
  return new
