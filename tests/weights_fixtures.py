"""Reference ResNets with random weights, saved in the real weight-file formats.

The references are the frameworks' own networks (torchvision, timm, Keras), so
the parity tests compare our port against code no one here wrote. BatchNorm
running statistics are set from a forward pass over random images and then
perturbed, so they are far from the trivial 0/1 and inference actually uses
them. The last BatchNorm of each residual branch gets a small scale, as in
trained ResNets, which keeps the 50-layer activations at the scale of real
features (a few units) instead of growing into the thousands.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

import numpy as np
import pytest

PARITY_INSTALL = 'pip install -e ".[test,parity]"'


def require(module: str) -> ModuleType:
  """Imports a reference framework; skips locally, fails in CI (CI=true) where it must be installed."""
  if module.split('.')[0] in ('torch', 'torchvision', 'timm', 'safetensors') and 'triton' not in sys.modules:
    # PyPI's torch pulls in Triton (GPU kernels for torch.compile, unused here), whose LLVM crashes the
    # process when loaded after TensorFlow's. With it marked absent, torch runs without it.
    sys.modules['triton'] = None
  try:
    return importlib.import_module(module)
  except ImportError as err:
    message = f'{module} is a test-only reference framework ({err}); install it with {PARITY_INSTALL}.'
    if os.environ.get('CI'):
      pytest.fail(message)
    pytest.skip(message)


def randomize_torch_resnet(model, seed: int):
  """Random BN affine params, then running stats from data (perturbed); returns the model in eval mode."""
  torch = require('torch')
  g = torch.Generator().manual_seed(seed)
  bottleneck = any(name.endswith('bn3') for name, _ in model.named_modules())
  last_bn = 'bn3' if bottleneck else 'bn2'
  batch_norms = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
  with torch.no_grad():
    for name, bn in batch_norms:
      low, high = (0.1, 0.5) if name.endswith(last_bn) else (0.5, 1.5)
      bn.weight.uniform_(low, high, generator=g)
      bn.bias.uniform_(-0.2, 0.2, generator=g)
      bn.reset_running_stats()
      bn.momentum = None  # cumulative average: one pass sets the statistics of that pass
    model.train()
    model(torch.randn(4, 3, 64, 64, generator=g))
    for _, bn in batch_norms:
      bn.running_mean.add_(torch.empty_like(bn.running_mean).uniform_(-0.1, 0.1, generator=g) * bn.running_var.sqrt())
      bn.running_var.mul_(torch.empty_like(bn.running_var).uniform_(0.8, 1.25, generator=g))
  return model.eval()


def torchvision_resnet(depth: int, seed: int = 0):
  """torchvision.models.resnet<depth>() with random weights and non-trivial BN statistics."""
  torch = require('torch')
  torchvision = require('torchvision')
  torch.manual_seed(seed)
  return randomize_torch_resnet(getattr(torchvision.models, f'resnet{depth}')(), seed + 1)


def torch_features_and_logits(model, images_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Pooled features and logits of a torchvision/timm ResNet (eval mode) for NHWC float32 inputs."""
  torch = require('torch')
  with torch.no_grad():
    x = torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
    if hasattr(model, 'forward_head'):  # timm
      features = model.forward_head(model.forward_features(x), pre_logits=True)
    else:  # torchvision: everything but the final fc
      features = torch.flatten(torch.nn.Sequential(*list(model.children())[:-1])(x), 1)
    return features.numpy(), model.fc(features).numpy()


def keras_resnet50(seed: int = 0):
  """keras.applications.ResNet50(weights=None) with random biases, BN params and non-trivial BN statistics."""
  keras = require('keras')
  keras.utils.set_random_seed(seed)
  model = keras.applications.ResNet50(weights=None, classifier_activation=None)
  rng = np.random.RandomState(seed)
  batch_norms = []
  for layer in model.layers:
    if isinstance(layer, keras.layers.Conv2D):
      kernel, bias = layer.get_weights()
      layer.set_weights([kernel, rng.uniform(-0.1, 0.1, bias.shape).astype(np.float32)])
    elif isinstance(layer, keras.layers.BatchNormalization):
      gamma, beta, mean, var = layer.get_weights()
      low, high = (0.1, 0.5) if layer.name.endswith('_3_bn') else (0.5, 1.5)
      layer.set_weights([rng.uniform(low, high, gamma.shape).astype(np.float32),
                         rng.uniform(-0.2, 0.2, beta.shape).astype(np.float32), mean, var])
      layer.momentum = 0.0  # the training-mode pass below stores exactly its batch statistics
      batch_norms.append(layer)
  model(rng.randn(2, 224, 224, 3).astype(np.float32), training=True)
  for layer in batch_norms:
    gamma, beta, mean, var = layer.get_weights()
    layer.set_weights([gamma, beta,
                       mean + rng.uniform(-0.1, 0.1, mean.shape).astype(np.float32) * np.sqrt(var),
                       var * rng.uniform(0.8, 1.25, var.shape).astype(np.float32)])
  return model


def save_keras_legacy_h5(model, path: str) -> None:
  """Writes ``model``'s weights in the legacy Keras HDF5 weights layout of the published ResNet files.

  Keras 3 only writes that layout from its legacy-saving module (model.save_weights
  insists on .weights.h5), which is what tf.keras' save_weights(..., 'h5') did.
  """
  h5py = require('h5py')
  legacy_h5_format = require('keras.src.legacy.saving.legacy_h5_format')
  with h5py.File(path, 'w') as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, model)


def keras_features_and_logits(model, images_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Pooled features ('avg_pool') and logits of a with-top Keras ResNet in inference mode."""
  keras = require('keras')
  both = keras.Model(model.input, [model.get_layer('avg_pool').output, model.output])
  features, logits = both(images_nhwc, training=False)
  return np.asarray(features), np.asarray(logits)


def truncate(path: str, out_path: str, fraction: float = 0.5) -> str:
  """Copies the first ``fraction`` of a file, as an interrupted download leaves it."""
  with open(path, 'rb') as f:
    data = f.read()
  with open(out_path, 'wb') as f:
    f.write(data[:int(len(data) * fraction)])
  return out_path
