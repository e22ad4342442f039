"""The momentum (key) encoder: an exponential moving average of the encoder and its projection heads.

MoCo (He et al. 2020) computes the contrasts ("keys") with a slowly moving copy
of the network instead of the network being trained: the keys of one step and
those queued from earlier steps then come from nearly the same encoder, so the
queue stays a consistent set of negatives, and a key never follows the query's
gradient (no trivial solution by moving both). BYOL and MoCo v3 raise the
momentum from its base value to 1 over training with a half cosine, so the
keys settle as the learning rate decays.

Pure functions; the EMA parameters live in the train state
(``steps.TrainState.momentum_params``), so they are checkpointed and a resumed
run continues with exactly the key encoder it had. Evaluation never reads them:
it embeds with the online (query) encoder, as MoCo evaluates.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from scfa_jax import config as base_config

SCHEDULES = base_config.MOMENTUM_SCHEDULES

PyTree = Any


def schedule(base: float, kind: str, total_steps: int) -> Callable[[Any], Any]:
  """Momentum at a step: ``base`` throughout, or ``1 - (1 - base) (1 + cos(pi step / total)) / 2`` (cosine to 1)."""
  if kind == 'constant':
    return lambda step: jnp.asarray(base, jnp.float32)
  if kind == 'cosine':
    def cosine(step: Any) -> Any:
      progress = jnp.minimum(jnp.asarray(step, jnp.float32) / max(total_steps, 1), 1.0)
      return 1.0 - (1.0 - base) * (1.0 + jnp.cos(jnp.pi * progress)) / 2.0
    return cosine
  raise ValueError(f'Unknown momentum schedule {kind!r}; expected one of {SCHEDULES}.')


def update(momentum_params: PyTree, params: PyTree, momentum: Any) -> PyTree:
  """``m * momentum_params + (1 - m) * params``, leaf by leaf (the key encoder follows the trained one)."""
  return jax.tree.map(lambda ema, p: momentum * ema + (1.0 - momentum) * p, momentum_params, params)


def is_enabled(model_config: Any) -> bool:
  return bool(model_config.get('momentum') or 0.0)
