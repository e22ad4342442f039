"""Orbax checkpoints of the train state: periodic saves, keep N, resume from the newest intact one.

A checkpoint can be damaged after orbax finished it (a full disk, a copy cut
short, a hand edit) or left half-written by a kill during the save (an orbax
``*.orbax-checkpoint-tmp-*`` folder). ``restore_latest`` then falls back to the
newest intact step and moves the damaged folders aside (into
``<checkpoints>_broken/``) so the run can write those steps again. A checkpoint
that is intact but holds a different model is a different error: falling back
would silently train another model.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from typing import Any, Optional

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from scfa_jax import errors

PyTree = Any

ITEM = 'default'  # The item folder of a single-item CheckpointManager.
TMP_MARKER = '.orbax-checkpoint-tmp'


def create_manager(workdir: str, ckpt_config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  """A manager writing to ``<workdir>/checkpoints``."""
  options = ocp.CheckpointManagerOptions(max_to_keep=ckpt_config.max_to_keep, create=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), 'checkpoints'), options=options)


class NoCheckpointError(errors.UserError, FileNotFoundError):
  """A directory that should hold a trained checkpoint holds none."""


class BrokenCheckpointsError(errors.UserError, RuntimeError):
  """Every checkpoint of a run is damaged: nothing to resume from."""

  exit_code = 1


class CheckpointMismatchError(errors.UserError, ValueError):
  """An intact checkpoint holds a model of another configuration than the one configured."""

  exit_code = 2


def has_checkpoint(directory: str) -> bool:
  """Whether ``directory`` (a manager's, e.g. ``<workdir>/checkpoints``) holds a finished checkpoint.

  Looks without creating anything, so asking about a mistyped workdir leaves no trace.
  """
  return os.path.isdir(directory) and bool(ocp.utils.checkpoint_steps(directory))


def _shapes(tree: PyTree) -> dict[tuple[str, ...], tuple[int, ...]]:
  """Flat {path: shape} of a state or of a checkpoint's tree metadata, in orbax's serialised layout."""
  flat = ocp.tree.to_flat_dict(ocp.tree.serialize_tree(tree, keep_empty_nodes=True))
  return {key: tuple(getattr(leaf, 'shape', np.shape(leaf))) for key, leaf in flat.items()}


def mismatch(saved: PyTree, abstract: PyTree) -> Optional[str]:
  """A short description of how the saved tree differs from the configured one, or None."""
  ours, theirs = _shapes(abstract), _shapes(saved)
  diffs = [f'{"/".join(k)}: checkpoint {theirs.get(k, "absent")}, config {ours.get(k, "absent")}'
           for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
  if not diffs:
    return None
  return '; '.join(diffs[:3]) + (f'; {len(diffs) - 3} more' if len(diffs) > 3 else '')


def _first_line(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f'{type(e).__name__}: {text[0][:160] if text else ""}'


def _try_restore(manager: ocp.CheckpointManager, step: int, abstract: PyTree) -> tuple[Optional[PyTree], str]:
  """(state, '') for an intact checkpoint, (None, why) for a damaged one.

  Raises CheckpointMismatchError for an intact checkpoint of another model:
  orbax itself would restore a different shape without complaint.
  """
  path = os.path.join(manager.directory, str(step))
  try:
    saved = ocp.StandardCheckpointHandler().metadata(epath.Path(path) / ITEM).tree
  except Exception as e:  # pylint: disable=broad-except  # any unreadable metadata means a damaged step
    return None, f'unreadable metadata ({_first_line(e)})'
  difference = mismatch(saved, abstract)
  if difference is not None:
    raise CheckpointMismatchError(
        f'The checkpoint {path} was written by a different model configuration ({difference}). Run with the '
        'configuration that wrote it, or use a new --workdir for this configuration.')
  try:
    state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
  except Exception as e:  # pylint: disable=broad-except  # tensorstore, JSON and OS errors all mean damage
    return None, f'unreadable arrays ({_first_line(e)})'
  if not all(np.isfinite(x).all() for x in map(np.asarray, jax.tree.leaves(state))
             if np.issubdtype(x.dtype, np.floating)):
    return None, 'non-finite parameters'
  return state, ''


def _half_written(directory: str) -> list[str]:
  """Folders of saves that were cut short (orbax finalises a save by renaming its tmp folder)."""
  if not os.path.isdir(directory):
    return []
  return sorted(os.path.join(directory, name) for name in os.listdir(directory) if TMP_MARKER in name)


def _move_aside(manager: ocp.CheckpointManager, paths: list[str]) -> str:
  """Moves damaged folders out of the manager's directory (kept for inspection); returns where to."""
  target = str(manager.directory).rstrip('/') + '_broken'
  if jax.process_index() == 0:
    os.makedirs(target, exist_ok=True)
    for path in paths:
      destination = os.path.join(target, os.path.basename(path))
      if os.path.exists(destination):
        destination += f'.{time.strftime("%Y%m%d-%H%M%S")}'
      shutil.move(path, destination)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices('checkpointing.move_aside')
  manager.reload()
  return target


def restore_latest(manager: ocp.CheckpointManager, state: PyTree) -> PyTree:
  """Returns ``state`` restored from the newest intact checkpoint, or unchanged if there is none.

  ``state`` (host arrays) gives the structure, shapes and dtypes to restore into.

  Raises:
    CheckpointMismatchError: the newest intact checkpoint holds another model.
    BrokenCheckpointsError: there are checkpoints, and every one is damaged.
  """
  directory = str(manager.directory)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  broken: list[tuple[int, str]] = []
  restored, step = None, None
  for step in sorted(manager.all_steps(), reverse=True):
    restored, why = _try_restore(manager, step, abstract)
    if restored is not None:
      break
    broken.append((step, why))
  if broken and restored is None:
    folders = ', '.join(f'{os.path.join(directory, str(s))} ({why})' for s, why in broken)
    raise BrokenCheckpointsError(
        f'No intact checkpoint: {folders}. Removing the broken folder(s) restarts training from scratch in the same '
        f'--workdir (rm -r {" ".join(os.path.join(directory, str(s)) for s, _ in broken)}).')
  half_written = _half_written(directory)
  damaged = [os.path.join(directory, str(s)) for s, _ in broken] + half_written
  if damaged:
    target = _move_aside(manager, damaged)
    for s, why in broken:
      logging.warning('Checkpoint %s is damaged (%s); moved it to %s.', os.path.join(directory, str(s)), why, target)
    for path in half_written:
      logging.warning('Checkpoint %s was left half-written by an interrupted save; moved it to %s.', path, target)
  if restored is None:
    if damaged:
      logging.warning('No checkpoint left in %s: training starts from scratch.', directory)
    return state
  logging.info('Resuming from checkpoint step %d in %s', step, directory)
  if broken:
    logging.warning('Resuming from step %d, the newest intact checkpoint in %s.', step, directory)
  return restored


def save(manager: ocp.CheckpointManager, step: int, state: PyTree) -> None:
  """Saves host copies (the devices hold identical replicas); waits so no save is lost on exit."""
  manager.save(step, args=ocp.args.StandardSave(jax.device_get(state)), force=True)
  manager.wait_until_finished()
