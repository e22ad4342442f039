"""The SCFA network: ResNet encoder + projection head (+ optional classifier)."""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from scfa_jax.models import resnet

Array = Any


class ProjectionHead(nn.Module):
  """2-layer MLP with ReLU and an L2-normalised output (the SupCon head)."""

  hidden_dim: int = 2048
  output_dim: int = 128

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = nn.relu(nn.Dense(self.hidden_dim, name='dense1')(x))
    x = nn.Dense(self.output_dim, name='dense2')(x)
    # Normalise in float32; unnormalised features are a classic SupCon NaN source.
    x = x.astype(jnp.float32)
    return x * jnp.reciprocal(jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + 1e-12))


class SCFAModel(nn.Module):
  """Encoder shared by both views, projection head and optional classifier.

  ``__call__`` returns a dict with ``features`` (pooled encoder output, used by
  the linear probe, kNN and retrieval), ``projection`` (unit-norm, used by the
  SupCon loss) and ``logits`` (only when ``num_classes`` > 0: the cross-entropy
  baseline and fine-tuning).
  """

  encoder: nn.Module
  proj_hidden_dim: int = 2048
  proj_dim: int = 128
  num_classes: int = 0
  classifier_hidden_dim: int = 0  # >0: Dense(hidden, relu) -> Dense(classes), as the authors fine-tuned

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> dict[str, Array]:
    _, features = self.encoder(x, train=train)
    out = {
        'features': features,
        'projection': ProjectionHead(self.proj_hidden_dim, self.proj_dim, name='projection')(features),
    }
    if self.num_classes:
      h = features
      if self.classifier_hidden_dim:
        h = nn.relu(nn.Dense(self.classifier_hidden_dim, name='classifier_hidden')(h))
      out['logits'] = nn.Dense(self.num_classes, name='classifier')(h).astype(jnp.float32)
    return out


def create_model(model_config: ml_collections.ConfigDict, *, num_classes: int = 0, axis_name: Optional[str] = None) -> SCFAModel:
  """Builds the SCFA model described by ``config.model``."""
  encoder = resnet.ResNet(
      depth=model_config.depth,
      width=model_config.width,
      variant=model_config.variant,
      num_classes=0,
      axis_name=axis_name if model_config.sync_batch_norm else None,
      bn_momentum=model_config.bn_momentum,
      dtype=jnp.dtype(model_config.dtype),
  )
  return SCFAModel(
      encoder=encoder,
      proj_hidden_dim=model_config.proj_hidden_dim,
      proj_dim=model_config.proj_dim,
      num_classes=num_classes,
      classifier_hidden_dim=model_config.classifier_hidden_dim,
  )
