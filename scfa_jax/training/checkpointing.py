"""Orbax checkpoints of the train state: periodic saves, keep N, resume from the latest."""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

import jax
import ml_collections
import orbax.checkpoint as ocp

PyTree = Any


def create_manager(workdir: str, ckpt_config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  """A manager writing to ``<workdir>/checkpoints``."""
  options = ocp.CheckpointManagerOptions(max_to_keep=ckpt_config.max_to_keep, create=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), 'checkpoints'), options=options)


class NoCheckpointError(FileNotFoundError):
  """A directory that should hold a trained checkpoint holds none."""


def has_checkpoint(directory: str) -> bool:
  """Whether ``directory`` (a manager's, e.g. ``<workdir>/checkpoints``) holds a finished checkpoint.

  Looks without creating anything, so asking about a mistyped workdir leaves no trace.
  """
  return os.path.isdir(directory) and bool(ocp.utils.checkpoint_steps(directory))


def restore_latest(manager: ocp.CheckpointManager, state: PyTree) -> PyTree:
  """Returns ``state`` restored from the latest checkpoint, or unchanged if there is none.

  ``state`` (host arrays) gives the structure, shapes and dtypes to restore into;
  a checkpoint written by a different model configuration fails here with
  orbax's description of the mismatching tree.
  """
  step: Optional[int] = manager.latest_step()
  if step is None:
    return state
  logging.info('Resuming from checkpoint step %d in %s', step, manager.directory)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  try:
    return manager.restore(step, args=ocp.args.StandardRestore(abstract))
  except (ValueError, KeyError) as e:
    raise ValueError(
        f'The checkpoint at {manager.directory}/{step} does not fit the configured model: {e}\n'
        'Use a new --workdir for a different configuration, or the configuration that wrote it.') from e


def save(manager: ocp.CheckpointManager, step: int, state: PyTree) -> None:
  """Saves host copies (the devices hold identical replicas); waits so no save is lost on exit."""
  manager.save(step, args=ocp.args.StandardSave(jax.device_get(state)), force=True)
  manager.wait_until_finished()
