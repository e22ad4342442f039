"""PointwiseConv (1x1 convolutions as matrix products, for XLA CPU) computes what nn.Conv computes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scfa_jax.models import resnet


@pytest.mark.parametrize('strides,use_bias,size', [((1, 1), False, 8), ((2, 2), False, 8), ((2, 2), True, 7)])
def test_pointwise_conv_matches_nn_conv_values_and_gradients(strides, use_bias, size):
  x = jax.random.normal(jax.random.key(0), (2, size, size, 5))
  reference = nn.Conv(6, (1, 1), strides, padding='VALID', use_bias=use_bias)
  pointwise = resnet.PointwiseConv(6, strides, use_bias=use_bias)
  variables = reference.init(jax.random.key(1), x)
  # Same parameter tree and, from the same key, the same initial values: checkpoints and ported weights carry over.
  assert jax.tree.map(np.shape, pointwise.init(jax.random.key(1), x)) == jax.tree.map(np.shape, variables)
  np.testing.assert_array_equal(pointwise.init(jax.random.key(1), x)['params']['kernel'],
                                variables['params']['kernel'])
  if use_bias:
    variables = jax.tree.map(lambda v: v + 0.5, variables)
  np.testing.assert_allclose(pointwise.apply(variables, x), reference.apply(variables, x), rtol=1e-5, atol=1e-5)

  def loss(module, params, inputs):
    return jnp.sum(jnp.sin(module.apply({'params': params}, inputs)))

  grads = jax.grad(lambda p, i: loss(pointwise, p, i), argnums=(0, 1))(variables['params'], x)
  expected = jax.grad(lambda p, i: loss(reference, p, i), argnums=(0, 1))(variables['params'], x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), grads, expected)


def test_pointwise_conv_keeps_the_compute_dtype():
  x = jnp.ones((1, 4, 4, 3), jnp.float32)
  module = resnet.PointwiseConv(2, dtype=jnp.bfloat16)
  variables = module.init(jax.random.key(0), x)
  assert variables['params']['kernel'].dtype == jnp.float32
  assert module.apply(variables, x).dtype == jnp.bfloat16


def test_resnet_uses_it_only_for_unpadded_1x1_convolutions():
  assert isinstance(resnet.make_conv(4, (1, 1), (2, 2), padding='VALID', name='a', use_bias=False, dtype=None),
                    resnet.PointwiseConv)
  assert isinstance(resnet.make_conv(4, (3, 3), padding=((1, 1), (1, 1)), name='b', use_bias=False, dtype=None),
                    nn.Conv)
  assert isinstance(resnet.make_conv(4, (1, 1), padding=((1, 1), (1, 1)), name='c', use_bias=False, dtype=None),
                    nn.Conv)

