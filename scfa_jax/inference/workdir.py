"""A finished workdir -> its config, the trained variables and the saved heads, read-only.

Training's ``checkpointing.restore_latest`` moves damaged checkpoints aside so
a run can write those steps again; inference only reads, so it skips a damaged
step (with a warning) and leaves the folder as it found it. Only ``params`` and
``batch_stats`` are restored: the optimiser state is not needed to predict.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from scfa_jax import errors
from scfa_jax.evaluation import heads as heads_lib
from scfa_jax.evaluation import report
from scfa_jax.models import scfa
from scfa_jax.training import checkpointing
from scfa_jax.training import workdir_config

Variables = dict[str, Any]  # {'params': ..., 'batch_stats': ...} host arrays


class WorkdirError(errors.MissingFilesError):
  """A workdir without a config.json or without an intact checkpoint."""


@dataclasses.dataclass(frozen=True)
class Model:
  """A restored model: how to build it and what it learned."""

  model: scfa.SCFAModel
  variables: Variables
  step: int
  checkpoint: str  # the folder it was restored from


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """``<workdir>/config.json`` as a ConfigDict."""
  path = os.path.join(workdir, workdir_config.CONFIG_FILE)
  if not os.path.isdir(workdir):
    raise WorkdirError(f'{workdir}: no such workdir; pass the --workdir of a trained run.')
  if not os.path.isfile(path):
    raise WorkdirError(f'{path} not found: {workdir} is not the workdir of a run (train one with '
                       'python -m scfa_jax.main --config=... --workdir=...).')
  return workdir_config.read(workdir)


def class_names(workdir: str) -> Optional[list[str]]:
  """The class names of the saved heads, else of results.json, else None."""
  for path, key in ((os.path.join(heads_lib.heads_dir(workdir), heads_lib.META_FILE), 'class_names'),
                    (os.path.join(workdir, report.RESULTS_FILE), 'class_names')):
    if os.path.isfile(path):
      with open(path) as f:
        names = json.load(f).get(key)
      if names:
        return list(names)
  return None


def _saved_tree(path: str) -> dict[str, Any]:
  return ocp.StandardCheckpointHandler().metadata(epath.Path(path) / checkpointing.ITEM).tree


def _expected_shapes(model: scfa.SCFAModel, image_shape: tuple[int, ...]) -> Variables:
  init = functools.partial(model.init, train=False)
  shapes = jax.eval_shape(init, jax.random.key(0), jnp.zeros((1,) + tuple(image_shape), jnp.float32))
  return {'params': shapes['params'], 'batch_stats': shapes.get('batch_stats', {})}


def _restore_step(path: str, expected: Variables) -> Variables:
  abstract = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), expected)
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), abstract)
  return ocp.PyTreeCheckpointer().restore(os.path.join(path, checkpointing.ITEM), args=ocp.args.PyTreeRestore(
      item=abstract, restore_args=restore_args, partial_restore=True))


def restore(directory: str, model: scfa.SCFAModel, image_shape: tuple[int, ...], *,
            step: Optional[int] = None) -> Model:
  """The variables of the checkpoint at ``step`` (default: the newest intact one) in ``directory``.

  Raises:
    WorkdirError: no checkpoint (or not ``step``), or every checkpoint damaged.
    checkpointing.CheckpointMismatchError: an intact checkpoint of another model.
  """
  available = sorted(ocp.utils.checkpoint_steps(directory), reverse=True) if os.path.isdir(directory) else []
  if not available:
    raise WorkdirError(f'No checkpoint in {directory}: train this workdir first (python -m scfa_jax.main '
                       '--config=... --workdir=...), or pass the --workdir of a trained run.')
  if step is not None:
    if step not in available:
      raise WorkdirError(f'No checkpoint of step {step} in {directory}; it holds steps {sorted(available)}.')
    available = [step]
  expected = _expected_shapes(model, image_shape)
  damaged = []
  for candidate in available:
    path = os.path.join(directory, str(candidate))
    try:
      saved = _saved_tree(path)
    except Exception as e:  # pylint: disable=broad-except  (unreadable metadata: a damaged step)
      damaged.append(f'{path} ({type(e).__name__})')
      continue
    saved = {k: saved.get(k, {}) for k in expected}
    difference = checkpointing.mismatch(saved, expected)
    if difference is not None:
      raise checkpointing.CheckpointMismatchError(
          f'The checkpoint {path} holds another model than {os.path.dirname(directory)}/config.json describes '
          f'({difference}); pass the workdir whose config.json wrote it.')
    try:
      variables = _restore_step(path, expected)
    except Exception as e:  # pylint: disable=broad-except  (tensorstore, JSON and OS errors all mean damage)
      damaged.append(f'{path} ({type(e).__name__})')
      continue
    if all(np.isfinite(x).all() for x in jax.tree.leaves(variables)):
      for d in damaged:
        logging.warning('Skipped the damaged checkpoint %s.', d)
      return Model(model=model, variables=variables, step=candidate, checkpoint=path)
    damaged.append(f'{path} (non-finite parameters)')
  raise WorkdirError(f'No intact checkpoint: {", ".join(damaged)}. Restore the workdir from a copy, or retrain.')


def restore_encoder(workdir: str, config: ml_collections.ConfigDict, *, step: Optional[int] = None,
                    num_classes: int = 0) -> Model:
  """The pre-trained model of ``workdir`` (with its classifier when it was trained with cross-entropy)."""
  directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
  classes = num_classes if config.loss.name == 'cross_entropy' else 0
  model = scfa.model_of(config, num_classes=classes)
  return restore(directory, model, scfa.input_shape_of(config), step=step)


def restore_finetuned(workdir: str, config: ml_collections.ConfigDict, finetune_dir: str, *,
                      num_classes: int) -> Model:
  """The fine-tuned model (encoder + classifier) whose folder ``heads.json`` names."""
  model = scfa.model_of(config, num_classes=num_classes, pathway_heads=False)
  return restore(os.path.join(workdir, finetune_dir, 'checkpoints'), model, scfa.input_shape_of(config))


def newest_step(workdir: str) -> Optional[int]:
  """The newest checkpoint step of ``workdir`` by its folder name (not checked for damage); None without any."""
  directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
  steps = ocp.utils.checkpoint_steps(directory) if os.path.isdir(directory) else []
  return max(steps) if steps else None
