"""Flax Linen ResNet family (10/18/34/50/101/152) in NHWC.

Two layouts, both represented exactly so that public ImageNet weights compute
what they computed in their original framework:

* ``'v1.5'`` (torchvision, timm): stride in the 3x3 conv of a bottleneck, no
  conv biases, BatchNorm epsilon 1e-5.
* ``'v1'`` (Keras ``ResNet50``): stride in the first 1x1 conv of a bottleneck,
  conv biases, BatchNorm epsilon 1.001e-5.

Padding is explicit (torch style) rather than ``'SAME'``: XLA's SAME pads a
stride-2 conv asymmetrically, which would shift every feature map by a pixel
against the reference networks.

Parameter names are fixed (``stem_conv``, ``stage1_block0/conv1`` ...) because
the weight porter (``scfa_jax.tools.port_weights``) maps onto them.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from scfa_jax import config as base_config

Array = Any

VARIANTS = base_config.RESNET_VARIANTS

# Depth -> (block type, blocks per stage).
DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    10: ('basic', (1, 1, 1, 1)),  # not an ImageNet model: fast compiles for tests and the CPU demo
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
}


def _variant_defaults(variant: str) -> tuple[bool, float]:
  """Returns (conv_bias, bn_epsilon) of a layout."""
  if variant == 'v1.5':
    return False, 1e-5
  if variant == 'v1':
    return True, 1.001e-5
  raise ValueError(f'Unknown ResNet variant {variant!r}; expected one of {VARIANTS}.')


class PointwiseConv(nn.Module):
  """A 1x1 convolution computed as a matrix product, with ``nn.Conv``'s parameters.

  Why: XLA's CPU backend takes the weight gradient of a 1x1 ``conv_general_dilated``
  as a convolution whose window is the whole feature map, over transposed
  copies of the activations with the backward elementwise ops fused in;
  those copies alone were 22% of the ResNet-50 training step on CPU
  (``python -m scfa_jax.bench profile``). As a matrix product the forward and
  both gradients are matrix products too, and the step took 3.7-4.1 s instead
  of 6.2-6.7 s (2 cores; docs/performance.md). The
  kernel keeps nn.Conv's shape ``(1, 1, in, out)``, name, initialiser and
  dtype handling, so checkpoints and ported weights are unchanged. A stride
  subsamples first, which is what a 1x1 'VALID' convolution with that stride
  computes.
  """

  features: int
  strides: tuple[int, int] = (1, 1)
  use_bias: bool = False
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Callable[..., Array] = nn.linear.default_kernel_init
  bias_init: Callable[..., Array] = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param('kernel', self.kernel_init, (1, 1, x.shape[-1], self.features), self.param_dtype)
    bias = self.param('bias', self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    sh, sw = self.strides
    if (sh, sw) != (1, 1):
      x = x[..., ::sh, ::sw, :]
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    # A 2-D [pixels, in] x [in, out] product: as a 4-D dot_general the step was 20% slower on XLA CPU.
    y = (x.reshape((-1, x.shape[-1])) @ kernel[0, 0]).reshape(x.shape[:-1] + (self.features,))
    return y if bias is None else y + bias


def make_conv(features: int, kernel_size: tuple[int, int], strides: tuple[int, int] = (1, 1), *,
              padding: Any, name: str, use_bias: bool, dtype: Any) -> nn.Module:
  """``nn.Conv``, except that on CPU unpadded 1x1 convolutions become :class:`PointwiseConv` (same parameters).

  Only on CPU: that is where it was measured to help; GPUs and TPUs keep the
  convolution their compilers are tuned for. Parameters, and so checkpoints,
  are the same either way.
  """
  if tuple(kernel_size) == (1, 1) and padding == 'VALID' and jax.default_backend() == 'cpu':
    return PointwiseConv(features, tuple(strides), use_bias=use_bias, dtype=dtype, name=name)
  return nn.Conv(features, kernel_size, strides, padding=padding, use_bias=use_bias, dtype=dtype, name=name)


def stem_pool(x: jax.Array) -> jax.Array:
  """The stem's 3x3 stride-2 max pool with 1 px of padding, as ``-inf`` padding and a ``VALID`` pool.

  The same function (values and gradients) as ``nn.max_pool(x, (3, 3), (2, 2),
  ((1, 1), (1, 1)))``, which pads with ``-inf`` too; written out because ONNX
  converters translate a padded pool wrongly (jax2onnx 0.13: 23 x 23 outputs
  for 24 x 24) and translate this form exactly (``tools.export --format=onnx``).
  """
  x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
  return nn.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding='VALID')


class BasicBlock(nn.Module):
  """Two 3x3 convs (ResNet-18/34). Identical in both layouts."""

  filters: int
  strides: int
  conv: Callable[..., nn.Module]
  norm: Callable[..., nn.Module]
  stride_in_first_conv: bool = False  # unused; kept for a uniform signature

  @nn.compact
  def __call__(self, x: Array) -> Array:
    residual = x
    y = self.conv(self.filters, (3, 3), (self.strides, self.strides), padding=((1, 1), (1, 1)), name='conv1')(x)
    y = nn.relu(self.norm(name='bn1')(y))
    y = self.conv(self.filters, (3, 3), padding=((1, 1), (1, 1)), name='conv2')(y)
    y = self.norm(name='bn2')(y)
    if residual.shape != y.shape:
      residual = self.conv(self.filters, (1, 1), (self.strides, self.strides), padding='VALID', name='proj_conv')(residual)
      residual = self.norm(name='proj_bn')(residual)
    return nn.relu(residual + y)


class Bottleneck(nn.Module):
  """1x1 -> 3x3 -> 1x1 (x4) block; where the stride sits depends on the layout."""

  filters: int
  strides: int
  conv: Callable[..., nn.Module]
  norm: Callable[..., nn.Module]
  stride_in_first_conv: bool = False  # True for the Keras/Caffe 'v1' layout

  @nn.compact
  def __call__(self, x: Array) -> Array:
    residual = x
    s = (self.strides, self.strides)
    first_stride, mid_stride = (s, (1, 1)) if self.stride_in_first_conv else ((1, 1), s)
    y = self.conv(self.filters, (1, 1), first_stride, padding='VALID', name='conv1')(x)
    y = nn.relu(self.norm(name='bn1')(y))
    y = self.conv(self.filters, (3, 3), mid_stride, padding=((1, 1), (1, 1)), name='conv2')(y)
    y = nn.relu(self.norm(name='bn2')(y))
    y = self.conv(self.filters * 4, (1, 1), padding='VALID', name='conv3')(y)
    y = self.norm(name='bn3')(y)
    if residual.shape != y.shape:
      residual = self.conv(self.filters * 4, (1, 1), s, padding='VALID', name='proj_conv')(residual)
      residual = self.norm(name='proj_bn')(residual)
    return nn.relu(residual + y)


class ResNet(nn.Module):
  """ResNet backbone returning ``(logits, features)``.

  Attributes:
    depth: 10, 18, 34, 50, 101 or 152.
    width: filters of the first stage (64 in the standard nets; 8 makes a tiny
      model for tests and the CPU demo).
    variant: 'v1.5' (torchvision) or 'v1' (Keras); see the module docstring.
    num_classes: size of the ``head`` Dense layer; 0 means no head and
      ``logits`` is None (the SCFA encoder uses the pooled features only).
    axis_name: pmap axis over which BatchNorm statistics are averaged
      (synchronised BatchNorm); None for per-device statistics.
    bn_momentum: running-average momentum of BatchNorm.
    dtype: computation dtype (parameters stay float32).
  """

  depth: int = 50
  width: int = 64
  variant: str = 'v1.5'
  num_classes: int = 0
  axis_name: Optional[str] = None
  bn_momentum: float = 0.9
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> tuple[Optional[Array], Array]:
    if self.depth not in DEPTHS:
      raise ValueError(f'ResNet depth must be one of {sorted(DEPTHS)}, got {self.depth}.')
    block_type, stage_sizes = DEPTHS[self.depth]
    conv_bias, bn_eps = _variant_defaults(self.variant)
    conv = functools.partial(make_conv, use_bias=conv_bias, dtype=self.dtype)
    norm = functools.partial(
        nn.BatchNorm,
        use_running_average=not train,
        momentum=self.bn_momentum,
        epsilon=bn_eps,
        dtype=self.dtype,
        axis_name=self.axis_name if train else None,
    )
    block_cls = Bottleneck if block_type == 'bottleneck' else BasicBlock

    x = jnp.asarray(x, self.dtype)
    x = conv(self.width, (7, 7), (2, 2), padding=((3, 3), (3, 3)), name='stem_conv')(x)
    x = nn.relu(norm(name='stem_bn')(x))
    x = stem_pool(x)
    for stage, num_blocks in enumerate(stage_sizes):
      for block in range(num_blocks):
        strides = 2 if stage > 0 and block == 0 else 1
        x = block_cls(
            filters=self.width * 2**stage,
            strides=strides,
            conv=conv,
            norm=norm,
            stride_in_first_conv=self.variant == 'v1',
            name=f'stage{stage + 1}_block{block}',
        )(x)
    features = jnp.mean(x.astype(jnp.float32), axis=(1, 2))  # pooled in float32 whatever the dtype
    logits = None
    if self.num_classes:
      logits = nn.Dense(self.num_classes, dtype=self.dtype, name='head')(features).astype(jnp.float32)
    return logits, features
