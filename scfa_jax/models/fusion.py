"""Fused multi-scale samples: P pathways (1 global grid + L local views) -> one video feature.

Why fuse: on a dataset where the class is (long-range order) x (fine detail),
the global grid cannot see the detail and a local view cannot see the order,
so asking each view to carry the class on its own (the invariance variant,
every view a SupCon positive) asks the impossible. Fusing the pathways'
pooled features into one video feature lets each pathway carry what it can
see; SupCon then contrasts two independent samplings of the whole sample.

A fused sample is one model input [N, P, H, W, C] (every pathway's image has
the global grid's shape: ``data.layout.local_grid_spec``); pathway 0 is the
global grid, 1..L the local views.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from scfa_jax import config as base_config
from scfa_jax.models import resnet

Array = Any

FUSIONS = base_config.FUSIONS


def fused_dim(feature_dim: int, num_pathways: int, fusion: str) -> int:
  """Width of the fused video feature: P x F for concat, F for attention."""
  if fusion == 'concat':
    return feature_dim * num_pathways
  if fusion == 'attention':
    return feature_dim
  raise ValueError(f'Unknown fusion {fusion!r}; expected one of {FUSIONS}.')


class Fuse(nn.Module):
  """Pathway features [N, P, F] -> video features [N, fused_dim].

  ``concat``: the pathways side by side (no parameters; pathway 0 first), the
  local views' features times ``local_weight``. Why a weight: SupCon sees the
  video feature only through the projection head, whose first Dense layer
  absorbs any fixed scale of a half, so the loss cannot set how much each
  half counts in the cosine similarities that kNN and retrieval read; where a
  local view sees nothing of the class its half only adds noise to them
  (``docs/multiscale.md``: 0.5 keeps ``synthetic_detail``'s accuracy and
  closes ``synthetic_motion``'s retrieval gap to the grid alone).
  ``attention``: a softmax over the P pathways of a learned score per pathway
  (one bias-free Dense(1) shared by the pathways, plus a learned bias per
  pathway: a shared bias would cancel in the softmax and get only round-off
  gradients), and the weighted sum of their features: a video can lean on the
  pathway that sees its class, at the width of one pathway.
  """

  fusion: str = 'concat'
  local_weight: float = 1.0  # concat: the local views' features are scaled by this (model.local_feature_weight)

  @nn.compact
  def __call__(self, features: Array) -> Array:
    n, p, f = features.shape
    if self.fusion == 'concat':
      if self.local_weight != 1.0:
        features = jnp.concatenate([features[:, :1], features[:, 1:] * self.local_weight], axis=1)
      return features.reshape(n, p * f)
    if self.fusion == 'attention':
      weights = attention_weights(nn.Dense(1, use_bias=False, name='fusion_score')(features)[..., 0],
                                  self.param('fusion_bias', nn.initializers.zeros_init(), (p,)))
      return jnp.einsum('np,npf->nf', weights.astype(features.dtype), features)
    raise ValueError(f'Unknown fusion {self.fusion!r}; expected one of {FUSIONS}.')


def attention_weights(scores: Array, bias: Array) -> Array:
  """[N, P] weights: the softmax over pathways of ``scores`` [N, P] + ``bias`` [P], in float32."""
  return jax.nn.softmax(scores.astype(jnp.float32) + bias.astype(jnp.float32), axis=1)


class SeparateEncoders(nn.Module):
  """P ResNets with weights (and BatchNorm statistics) of their own, applied to [N, P, H, W, C].

  Pathway p's ResNet is the submodule ``pathway{p}``. A Python loop of P
  ordinary ResNets, not one ``nn.vmap``ped ResNet: XLA:CPU runs the vmapped
  (batched-weight) convolutions about 10x slower than the same FLOPs as plain
  convolutions (``docs/multiscale.md``).
  """

  encoder_kwargs: tuple[tuple[str, Any], ...]  # ResNet's keyword arguments, as sorted items (hashable)
  num_pathways: int

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> tuple[None, Array]:
    kwargs = dict(self.encoder_kwargs)
    features = [resnet.ResNet(**kwargs, name=f'pathway{p}')(x[:, p], train=train)[1]
                for p in range(self.num_pathways)]
    return None, jnp.stack(features, axis=1)


def separate_encoders(encoder_kwargs: dict[str, Any], num_pathways: int) -> nn.Module:
  """The encoder of ``model.separate_pathways``: :class:`SeparateEncoders` for ``num_pathways`` pathways."""
  return SeparateEncoders(tuple(sorted(encoder_kwargs.items())), num_pathways)


def encode_pathways(encoder: nn.Module, x: Array, *, train: bool, separate: bool) -> Array:
  """Pooled features [N, P, F] of every pathway of fused samples ``x`` [N, P, H, W, C].

  Shared weights: the N*P images go through the one encoder as one batch
  (BatchNorm statistics then span both scales). Separate weights: the
  encoders of :func:`separate_encoders`, one per pathway.
  """
  n, p = x.shape[:2]
  if separate:
    _, features = encoder(x, train)
    return features
  _, features = encoder(x.reshape((n * p,) + x.shape[2:]), train=train)
  return features.reshape((n, p) + features.shape[1:])
