"""The train state a run starts from: parameters initialised on the host, or loaded (ported weights, a workdir).

Apart from ``training.train``, whose input pipeline imports TensorFlow, so that what only needs a state (the
training-step benchmark, the tests' multi-device scripts) starts without it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax

from scfa_jax.models import pretrained
from scfa_jax.models import scfa
from scfa_jax.training import init_from
from scfa_jax.training import steps
from scfa_jax.training import warm_start


def create_train_state(rng: jax.Array, model: scfa.SCFAModel, image_shape: tuple[int, ...],
                       tx: optax.GradientTransformation, model_config: ml_collections.ConfigDict) -> steps.TrainState:
  """Initialises parameters on the host (loading ported weights when configured).

  ``image_shape`` is one model input (``scfa.input_shape_of``): (H, W, 3), or (P, H, W, 3) when fused.
  """
  variables = jax.jit(functools.partial(model.init, train=False))(rng, jnp.zeros((1,) + image_shape, jnp.float32))
  variables = jax.device_get(variables)
  if init_from.is_workdir(model_config.init_from):
    variables = warm_start.load(variables, ml_collections.ConfigDict({'model': model_config}))
  elif model_config.init_from:
    variables = pretrained.load_encoder(variables, model_config)
  state = steps.TrainState.create(apply_fn=model.apply, params=variables['params'], tx=tx,
                                  batch_stats=variables.get('batch_stats', {}))
  # Host copies: replicate() then makes fresh device buffers that the step may donate.
  return jax.device_get(state)
