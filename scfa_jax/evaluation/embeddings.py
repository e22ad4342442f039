"""Runs the frozen encoder over a split and returns host arrays of its outputs."""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from jax.experimental import multihost_utils

from scfa_jax.data import input_pipeline
from scfa_jax.data import perturbations
from scfa_jax.data import release
from scfa_jax.training import parallel
from scfa_jax.training import steps


def extractor(builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict,
              preprocessing_mode: str) -> Callable[..., dict[str, np.ndarray]]:
  """:func:`extract` with a pmapped ``steps.embed_step`` and this host's share of ``config.eval.batch_size``.

  Called as ``extractor(builder, config, mode)(replicated_state, split=...)``; evaluation and the probe
  a fine-tune starts from (``training.classifier_init``) embed the same way.
  """
  p_embed = parallel.pmap_step(functools.partial(steps.embed_step, preprocessing_mode=preprocessing_mode),
                               donate_state=False)
  return functools.partial(extract, p_embed, builder=builder, data_config=config.data,
                           local_batch_size=config.eval.batch_size // jax.process_count())


def extract(p_embed: Callable[..., dict], state: Any, builder: tfds.core.DatasetBuilder, split: str,
            data_config: ml_collections.ConfigDict, *, local_batch_size: int,
            num_clips: int = 1, num_local_views: int = 0,
            perturbation: Optional[perturbations.Perturbation] = None) -> dict[str, np.ndarray]:
  """Embeds every video of ``split`` in deterministic temporal views.

  Args:
    p_embed: the pmapped ``steps.embed_step``.
    state: replicated train state.
    builder: the prepared dataset.
    split: split to embed.
    data_config: ``config.data``.
    local_batch_size: videos per batch on this host.
    num_clips: K > 1 embeds K temporal views per video (test-time averaging).
    num_local_views: L > 0 adds L local views per video after the K (``input_pipeline.preprocess_eval``).
    perturbation: optional test-time perturbation of every video (robustness report).

  Returns:
    {'features': [N, D], 'projection': [N, d], 'label': [N], ('logits': [N, C])} over
    the whole split (all hosts), padding removed; with K > 1 or L > 0 the model
    outputs are [N, K + L, ...].
  """
  dataset, _ = input_pipeline.create_eval_dataset(builder, split, data_config, local_batch_size=local_batch_size,
                                                  num_clips=num_clips, num_local_views=num_local_views,
                                                  perturbation=perturbation)
  views_per_video = num_clips + num_local_views
  chunks: dict[str, list[np.ndarray]] = {}
  for batch in release.numpy_batches(dataset):  # its iterator let go on a thread: data/release.py
    images = batch['image']
    if views_per_video > 1:  # [B, V, H, W, 3] -> [B*V, H, W, 3]: the views of a video stay adjacent
      images = images.reshape((-1,) + images.shape[2:])
    outputs = jax.tree.map(parallel.unshard, p_embed(state, parallel.shard_batch({'image': images})))
    if views_per_video > 1:
      outputs = {k: v.reshape((-1, views_per_video) + v.shape[1:]) for k, v in outputs.items()}
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
