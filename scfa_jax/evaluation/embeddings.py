"""Runs the frozen encoder over a split and returns host arrays of its outputs."""

from __future__ import annotations

from typing import Any, Callable

import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from jax.experimental import multihost_utils

from scfa_jax.data import input_pipeline
from scfa_jax.training import parallel


def extract(p_embed: Callable[..., dict], state: Any, builder: tfds.core.DatasetBuilder, split: str,
            data_config: ml_collections.ConfigDict, *, local_batch_size: int) -> dict[str, np.ndarray]:
  """Embeds every video of ``split`` once (deterministic view).

  Args:
    p_embed: the pmapped ``steps.embed_step``.
    state: replicated train state.

  Returns:
    {'features': [N, D], 'projection': [N, d], 'label': [N], ('logits': [N, C])} over
    the whole split (all hosts), padding removed.
  """
  dataset, _ = input_pipeline.create_eval_dataset(builder, split, data_config, local_batch_size=local_batch_size)
  chunks: dict[str, list[np.ndarray]] = {}
  for batch in dataset.as_numpy_iterator():
    outputs = jax.tree.map(parallel.unshard, p_embed(state, parallel.shard_batch({'image': batch['image']})))
    outputs['label'] = batch['label']
    outputs['mask'] = batch['mask']
    for key, value in outputs.items():
      chunks.setdefault(key, []).append(np.asarray(value))
  local = {key: np.concatenate(values) for key, values in chunks.items()}
  if jax.process_count() > 1:
    local = {k: np.asarray(v).reshape((-1,) + v.shape[2:])
             for k, v in multihost_utils.process_allgather(local).items()}
  mask = local.pop('mask').astype(bool)
  return {key: value[mask] for key, value in local.items()}
