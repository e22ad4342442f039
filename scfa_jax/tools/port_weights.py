r"""Ports ImageNet-pretrained ResNet weights into scfa_jax's Flax ResNet.

Examples::

  # torchvision (or timm: same layout) state dicts, .pth (needs torch) or .safetensors
  python -m scfa_jax.tools.port_weights --source torchvision \
      --input resnet50-11ad3fa6.pth --output weights/tv_resnet50_v2
  # Keras ResNet50/101/152 weights (legacy HDF5, with or without top)
  python -m scfa_jax.tools.port_weights --source keras \
      --input resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 --output weights/keras_resnet50
  # Named weights: fetched (with network access) into the usual cache, then ported
  python -m scfa_jax.tools.port_weights --source torchvision --input IMAGENET1K_V2 \
      --depth 50 --output weights/tv_resnet50_v2

The output directory (layout in ``scfa_jax.models.pretrained``) is what
``config.model.init_from`` takes. The two families are different networks and
are kept so: torchvision/timm is ResNet v1.5 with ImageNet mean/std inputs,
Keras is v1 with Caffe (BGR, mean-subtracted) inputs; the JSON next to the
checkpoint records which, and the input pipeline follows it.

Depth and width are read from the file; every array is checked against the
Flax model, and anything missing, left over or mis-shaped is an error.
"""

from __future__ import annotations

import abc
import argparse
import hashlib
import os
import re
import shutil
import sys
import tempfile
from typing import Any, Mapping, NamedTuple, Optional, Sequence
import urllib.error
import urllib.request

from flax import traverse_util
import h5py
import jax
import jax.numpy as jnp
import numpy as np

from scfa_jax.models import backbone_metadata
from scfa_jax.models import pretrained
from scfa_jax.models import resnet

Weights = dict[str, np.ndarray]

_DOWNLOAD_TIMEOUT_S = 20
_MAX_LISTED = 8

# Named torchvision weights (ResNet<depth>_Weights.<name>.url). The 8 hex digits
# in each file name are the start of the file's sha256, as torch.hub checks.
TORCHVISION_WEIGHTS: dict[tuple[str, int], str] = {
    ('IMAGENET1K_V1', 18): 'https://download.pytorch.org/models/resnet18-f37072fd.pth',
    ('IMAGENET1K_V1', 34): 'https://download.pytorch.org/models/resnet34-b627a593.pth',
    ('IMAGENET1K_V1', 50): 'https://download.pytorch.org/models/resnet50-0676ba61.pth',
    ('IMAGENET1K_V2', 50): 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth',
    ('IMAGENET1K_V1', 101): 'https://download.pytorch.org/models/resnet101-63fe2227.pth',
    ('IMAGENET1K_V2', 101): 'https://download.pytorch.org/models/resnet101-cd907fc2.pth',
    ('IMAGENET1K_V1', 152): 'https://download.pytorch.org/models/resnet152-394f9c45.pth',
    ('IMAGENET1K_V2', 152): 'https://download.pytorch.org/models/resnet152-f82ba261.pth',
}

# keras.applications.ResNet{50,101,152}(weights='imagenet', include_top=False):
# URL and the md5 Keras checks.
_KERAS_BASE_URL = 'https://storage.googleapis.com/tensorflow/keras-applications/resnet/'
KERAS_WEIGHTS: dict[tuple[str, int], tuple[str, str]] = {
    ('imagenet', 50): (_KERAS_BASE_URL + 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5',
                       '4d473c1dd8becc155b73f8504c6f6626'),
    ('imagenet', 101): (_KERAS_BASE_URL + 'resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5',
                        '88cf7a10940856eca736dc7b7e228a21'),
    ('imagenet', 152): (_KERAS_BASE_URL + 'resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5',
                        'ee4c566cf9a93f14d82f913c2dc6dd0c'),
}

_TORCH_EXTENSIONS = ('.pth', '.pt', '.bin')
_SAFETENSORS_EXTENSIONS = ('.safetensors',)
_KERAS_EXTENSIONS = ('.h5', '.hdf5')


class Architecture(NamedTuple):
  """What a weights file holds, in ``resnet.ResNet`` terms."""

  depth: int
  width: int
  variant: str
  num_classes: int  # of the ImageNet head in the file; 0 = no head

  def describe(self) -> str:
    head = f'{self.num_classes}-class head' if self.num_classes else 'no head'
    return f'ResNet-{self.depth} ({self.variant}, width {self.width}, {head})'


class DownloadError(RuntimeError):
  """Named weights could not be fetched (offline, or a bad download)."""


# ---------------------------------------------------------------------------
# Reading files.
# ---------------------------------------------------------------------------


def read_torch_state_dict(path: str) -> Weights:
  """Reads a PyTorch state dict saved with ``torch.save`` (needs torch)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise ImportError(
        f'Reading {path} (a PyTorch .pth/.pt/.bin file) needs PyTorch, which is not installed: pip install torch '
        f'(a CPU-only build is enough). Or port the .safetensors file of the same weights, which needs no torch.') from err
  try:
    obj = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as err:  # torch raises RuntimeError, pickle errors, EOFError... for bad files.
    raise ValueError(
        f'Could not read {path} as a PyTorch state dict ({type(err).__name__}: {err}). It may be truncated or '
        f'corrupt (download it again and compare its sha256) or hold a pickled model instead of '
        f'model.state_dict().') from err
  if isinstance(obj, Mapping) and not _all_tensors(obj, torch):
    # Training checkpoints wrap the weights: {'state_dict': ...} (timm) or {'model': ...}.
    wrapped = [k for k in ('state_dict', 'model') if isinstance(obj.get(k), Mapping) and _all_tensors(obj[k], torch)]
    if wrapped:
      obj = obj[wrapped[0]]
  if not isinstance(obj, Mapping) or not obj or not _all_tensors(obj, torch):
    found = list(obj)[:_MAX_LISTED] if isinstance(obj, Mapping) else type(obj).__name__
    raise ValueError(f'{path} is not a state dict of tensors (found {found}); save model.state_dict() instead.')
  weights = {k: v.detach().cpu() for k, v in obj.items()}
  weights = {k: (v.float() if v.is_floating_point() else v).numpy() for k, v in weights.items()}
  return _strip_prefix(weights, 'module.')


def _all_tensors(mapping: Mapping[str, Any], torch: Any) -> bool:
  return all(isinstance(v, torch.Tensor) for v in mapping.values())


def read_safetensors(path: str) -> Weights:
  """Reads a .safetensors file (no torch needed; bfloat16/float16 files are widened to float32)."""
  from safetensors.flax import load_file  # pylint: disable=g-import-not-at-top  (numpy's loader lacks bfloat16)
  try:
    arrays = load_file(path)
  except Exception as err:  # SafetensorError for a bad header or a short file.
    raise ValueError(f'Could not read {path} as a safetensors file ({type(err).__name__}: {err}). It may be '
                     f'truncated or corrupt: download it again and compare its sha256.') from err
  weights = {k: np.asarray(v, np.float32 if jnp.issubdtype(v.dtype, jnp.floating) else v.dtype)
             for k, v in arrays.items()}
  return _strip_prefix(weights, 'module.')


def read_keras_h5(path: str) -> Weights:
  """Reads the legacy Keras HDF5 weights layout into {'<layer>/<weight>': array}.

  This is the layout of the files ``keras.applications`` downloads (root
  attribute ``layer_names``, one group per layer with a ``weight_names``
  attribute); whole-model files keep the same under ``model_weights``. Weight
  names lose their scope and ':0' suffix: 'conv1_conv/kernel:0' ->
  'conv1_conv/kernel'.
  """
  try:
    f = h5py.File(path, 'r')
  except OSError as err:
    raise ValueError(f'Could not open {path} as an HDF5 file ({err}). It may be truncated or corrupt: download '
                     f'it again (Keras publishes md5 sums) and retry.') from err
  with f:
    group = f
    if not _h5_attr_list(group, 'layer_names') and 'model_weights' in group:
      group = group['model_weights']
    layer_names = _h5_attr_list(group, 'layer_names')
    if not layer_names:
      hint = (' It looks like the Keras 3 `.weights.h5` layout; port the legacy .h5 file Keras publishes instead, '
              'or re-save with keras.src.legacy.saving.legacy_h5_format.') if 'layers' in group else ''
      raise ValueError(f'{path} is not a legacy Keras weights file: it has no layer_names attribute.{hint}')
    weights = {}
    try:
      for layer in layer_names:
        layer_group = group[layer]
        for weight_name in _h5_attr_list(layer_group, 'weight_names'):
          short = weight_name.split('/')[-1].split(':')[0]
          weights[f'{layer}/{short}'] = np.asarray(layer_group[weight_name], dtype=np.float32)
    except (KeyError, OSError) as err:
      raise ValueError(f'Could not read the weights in {path} ({err}); the file may be truncated or corrupt.') from err
  return weights


def _h5_attr_list(group: h5py.Group, name: str) -> list[str]:
  """A string-list attribute, including the chunked form (name0, name1, ...) used for long lists."""
  if name in group.attrs:
    values = list(group.attrs[name])
  else:
    values, chunk = [], 0
    while f'{name}{chunk}' in group.attrs:
      values.extend(group.attrs[f'{name}{chunk}'])
      chunk += 1
  return [v.decode('utf8') if isinstance(v, bytes) else str(v) for v in values]


def _strip_prefix(weights: Weights, prefix: str) -> Weights:
  """Drops a prefix that every key has (DataParallel's 'module.')."""
  if weights and all(k.startswith(prefix) for k in weights):
    return {k[len(prefix):]: v for k, v in weights.items()}
  return weights


# ---------------------------------------------------------------------------
# Layouts: which file key holds each Flax array, and how it is transposed.
# ---------------------------------------------------------------------------


class Layout(abc.ABC):
  """Maps between a framework's ResNet names and ``resnet.ResNet``'s."""

  source = ''
  variant = ''
  preprocessing = ''
  ignored = re.compile(r'$^')  # keys that hold no weights

  @abc.abstractmethod
  def infer(self, weights: Weights, path: str) -> Architecture:
    """The architecture a file's arrays describe; raises if they are not this layout's ResNet."""

  @abc.abstractmethod
  def key(self, module: Sequence[str], leaf: str) -> str:
    """The file key of Flax array ``module/leaf`` (e.g. ('stem_bn',), 'scale')."""

  def transform(self, module: Sequence[str], leaf: str, value: np.ndarray) -> np.ndarray:
    return value

  def _architecture(self, path: str, stages: dict[int, set[int]], bottleneck: bool, width: int,
                    num_classes: int) -> Architecture:
    """Finds the depth whose block type and blocks per stage match the file."""
    if sorted(stages) != [1, 2, 3, 4] or any(sorted(b) != list(range(len(b))) for b in stages.values()):
      raise ValueError(f'{path} has residual stages {sorted(stages)} with blocks '
                       f'{ {s: sorted(b) for s, b in sorted(stages.items())} }: not a 4-stage ResNet.')
    counts = tuple(len(stages[s]) for s in (1, 2, 3, 4))
    block = 'bottleneck' if bottleneck else 'basic'
    for depth, (block_type, stage_sizes) in resnet.DEPTHS.items():
      if (block_type, tuple(stage_sizes)) == (block, counts):
        return Architecture(depth, width, self.variant, num_classes)
    known = ', '.join(f'{d}: {b} {s}' for d, (b, s) in resnet.DEPTHS.items())
    raise ValueError(f'{path} has {block} blocks {counts} per stage, which is no ResNet depth this model builds '
                     f'({known}).')


class TorchvisionLayout(Layout):
  """torchvision's (and timm's) ResNet state dict: conv1, bn1, layer1.0.conv1, ..., fc."""

  source = 'torchvision'
  variant = 'v1.5'
  preprocessing = 'imagenet'
  ignored = re.compile(r'.*num_batches_tracked$')
  _LEAVES = {'kernel': 'weight', 'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean', 'var': 'running_var'}
  _BLOCK_MODULES = {'proj_conv': 'downsample.0', 'proj_bn': 'downsample.1'}

  def infer(self, weights: Weights, path: str) -> Architecture:
    stages: dict[int, set[int]] = {}
    for k in weights:
      m = re.match(r'layer(\d+)\.(\d+)\.', k)
      if m:
        stages.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if 'conv1.weight' not in weights or not stages:
      raise ValueError(f'{path} is not a torchvision/timm-layout ResNet: it has no conv1.weight and layer1.0.* '
                       f'keys (its first keys: {sorted(weights)[:_MAX_LISTED]}).')
    bottleneck = any(re.match(r'layer\d+\.\d+\.conv3\.', k) for k in weights)
    num_classes = weights['fc.weight'].shape[0] if 'fc.weight' in weights else 0
    return self._architecture(path, stages, bottleneck, int(weights['conv1.weight'].shape[0]), num_classes)

  def key(self, module: Sequence[str], leaf: str) -> str:
    name = module[0]
    if name == 'stem_conv':
      prefix = 'conv1'
    elif name == 'stem_bn':
      prefix = 'bn1'
    elif name == 'head':
      prefix = 'fc'
    else:  # stage{s}_block{b}/<conv1|bn1|...|proj_conv|proj_bn>
      s, b = re.fullmatch(r'stage(\d)_block(\d+)', name).groups()
      prefix = f'layer{s}.{b}.{self._BLOCK_MODULES.get(module[1], module[1])}'
    return f'{prefix}.{self._LEAVES[leaf]}'

  def transform(self, module: Sequence[str], leaf: str, value: np.ndarray) -> np.ndarray:
    if leaf == 'kernel' and value.ndim == 4:
      return value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if leaf == 'kernel' and value.ndim == 2:
      return value.T  # (out, in) -> (in, out)
    return value


class KerasLayout(Layout):
  """keras.applications ResNet50/101/152: conv1_conv, conv2_block1_1_conv, ..., predictions."""

  source = 'keras'
  variant = 'v1'
  preprocessing = 'caffe'
  _CONV_LEAVES = {'kernel': 'kernel', 'bias': 'bias'}
  _BN_LEAVES = {'scale': 'gamma', 'bias': 'beta', 'mean': 'moving_mean', 'var': 'moving_variance'}
  _BLOCK_LAYER = re.compile(r'conv(\d)_block(\d+)_(\d)_(conv|bn)/')

  def __init__(self):
    self.head_layer = 'predictions'

  def infer(self, weights: Weights, path: str) -> Architecture:
    layers = {k.split('/')[0] for k in weights}
    if 'bn_conv1' in layers or any(layer.startswith('res2a_branch') for layer in layers):
      raise ValueError(f'{path} uses the layer names of the older keras ResNet50 (bn_conv1, res2a_branch2a, '
                       f'...), a different network definition from keras.applications.ResNet50 today. Port the '
                       f'current file instead: {KERAS_WEIGHTS[("imagenet", 50)][0]}')
    stages: dict[int, set[int]] = {}
    for k in weights:
      m = self._BLOCK_LAYER.match(k)
      if m:
        stages.setdefault(int(m.group(1)) - 1, set()).add(int(m.group(2)) - 1)
    if 'conv1_conv/kernel' not in weights or not stages:
      raise ValueError(f'{path} is not a Keras ResNet (keras.applications.ResNet50/101/152): it has no conv1_conv '
                       f'and conv2_block1_* layers (its first layers: {sorted(layers)[:_MAX_LISTED]}).')
    # The classifier: whichever dense layer there is ('predictions' in keras.applications, 'probs' in some files).
    heads = sorted(layer for layer in layers if weights.get(f'{layer}/kernel', np.zeros(0)).ndim == 2)
    if len(heads) > 1:
      raise ValueError(f'{path} has several dense layers {heads}; a Keras ResNet has one classifier at most.')
    num_classes = 0
    if heads:
      self.head_layer = heads[0]
      num_classes = weights[f'{self.head_layer}/kernel'].shape[1]
    bottleneck = any(re.match(r'conv\d_block\d+_3_conv/', k) for k in weights)
    return self._architecture(path, stages, bottleneck, int(weights['conv1_conv/kernel'].shape[-1]), num_classes)

  def key(self, module: Sequence[str], leaf: str) -> str:
    name = module[0]
    if name == 'stem_conv':
      layer = 'conv1_conv'
    elif name == 'stem_bn':
      layer = 'conv1_bn'
    elif name == 'head':
      layer = self.head_layer
    else:
      s, b = re.fullmatch(r'stage(\d)_block(\d+)', name).groups()
      m = re.fullmatch(r'(proj_|)(conv|bn)(\d?)', module[1])
      index = '0' if m.group(1) else m.group(3)
      layer = f'conv{int(s) + 1}_block{int(b) + 1}_{index}_{m.group(2)}'
    leaves = self._BN_LEAVES if layer.endswith('_bn') else self._CONV_LEAVES
    return f'{layer}/{leaves[leaf]}'


LAYOUTS = {'torchvision': TorchvisionLayout, 'keras': KerasLayout}


def read_weights(source: str, path: str) -> Weights:
  """Reads ``path`` with the reader its extension calls for, checking it suits ``source``."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such file.')
  ext = os.path.splitext(path)[1].lower()
  if source == 'torchvision' and ext in _TORCH_EXTENSIONS:
    return read_torch_state_dict(path)
  if source == 'torchvision' and ext in _SAFETENSORS_EXTENSIONS:
    return read_safetensors(path)
  if source == 'keras' and ext in _KERAS_EXTENSIONS:
    return read_keras_h5(path)
  extensions = {'torchvision': _TORCH_EXTENSIONS + _SAFETENSORS_EXTENSIONS, 'keras': _KERAS_EXTENSIONS}
  hint = ''.join(f' Did you mean --source {other}?' for other, exts in extensions.items()
                 if other != source and ext in exts)
  raise ValueError(f'{path}: --source {source} reads {", ".join(extensions[source])} files, not '
                   f'{ext or "extensionless"} ones.{hint}')


# ---------------------------------------------------------------------------
# Conversion.
# ---------------------------------------------------------------------------


def expected_variables(arch: Architecture) -> dict[str, Any]:
  """Shapes of ``resnet.ResNet``'s variables for ``arch`` (abstract: nothing is computed)."""
  model = resnet.ResNet(depth=arch.depth, width=arch.width, variant=arch.variant, num_classes=arch.num_classes)
  return jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32))


def convert(weights: Weights, layout: Layout, arch: Architecture, path: str) -> dict[str, Any]:
  """Builds {'params', 'batch_stats'} of ``resnet.ResNet`` from a file's arrays.

  Every Flax array must come from exactly one file array of the right shape,
  and every file array (bar ``layout.ignored``) must be used.

  Raises:
    ValueError: listing missing, unexpected and mis-shaped arrays.
  """
  expected = traverse_util.flatten_dict(expected_variables(arch))
  out, used, missing, misshaped = {}, set(), [], []
  for path_in_tree, spec in expected.items():
    _, *module, leaf = path_in_tree
    key = layout.key(module, leaf)
    if key not in weights:
      missing.append(key)
      continue
    used.add(key)
    value = layout.transform(module, leaf, weights[key])
    if value.shape != spec.shape:
      misshaped.append(f'{key} {tuple(weights[key].shape)} (for {"/".join(module + [leaf])}, '
                       f'which needs {tuple(spec.shape)} after conversion)')
      continue
    out[path_in_tree] = np.asarray(value, np.float32)
  unexpected = sorted(k for k in weights if k not in used and not layout.ignored.match(k))
  problems = []
  for label, items in (('missing', missing), ('unexpected', unexpected), ('mis-shaped', misshaped)):
    items = sorted(items, key=_natural_key)
    if items:
      more = f' ... and {len(items) - _MAX_LISTED} more' if len(items) > _MAX_LISTED else ''
      problems.append(f'{label} ({len(items)}): {", ".join(items[:_MAX_LISTED])}{more}')
  if problems:
    raise ValueError(f'{path} does not match a {layout.source}-layout {arch.describe()}: ' + '; '.join(problems) +
                     '. Only plain ResNets convert (not ResNeXt, wide, SE or ResNet-v2 variants).')
  return traverse_util.unflatten_dict(out)


def _natural_key(text: str) -> list[Any]:
  """Sorts 'layer2.10' after 'layer2.9', so listings follow the network."""
  return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', text)]


def sha256_of(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


def port(source: str, input_path: str, output_dir: str, *, depth: Optional[int] = None, overwrite: bool = False,
         extra_metadata: Optional[Mapping[str, Any]] = None) -> tuple[dict[str, Any], dict[str, Any]]:
  """Converts one weights file and writes the ported backbone to ``output_dir``.

  Args:
    source: 'torchvision' (also timm) or 'keras'.
    input_path: the weights file.
    output_dir: where the orbax checkpoint and metadata JSON go.
    depth: if set, the file must hold a ResNet of this depth.
    overwrite: replace an existing ported backbone in ``output_dir``.
    extra_metadata: recorded in the JSON too (e.g. the URL it came from).

  Returns:
    (variables, metadata) exactly as written.
  """
  if source not in LAYOUTS:
    raise ValueError(f'Unknown --source {source!r}; expected one of {sorted(LAYOUTS)}.')
  layout = LAYOUTS[source]()
  weights = read_weights(source, input_path)
  arch = layout.infer(weights, input_path)
  if depth is not None and depth != arch.depth:
    raise ValueError(f'{input_path} holds a {arch.describe()}, not the ResNet-{depth} that --depth asked for. Port '
                     f'it with --depth {arch.depth} (or without --depth) and train with '
                     f'config.model.depth={arch.depth}, or use a ResNet-{depth} file.')
  variables = convert(weights, layout, arch, input_path)
  metadata = {
      'format_version': backbone_metadata.FORMAT_VERSION,
      'architecture': 'resnet',
      'depth': arch.depth,
      'width': arch.width,
      'variant': arch.variant,
      'num_classes': arch.num_classes,
      'preprocessing': layout.preprocessing,
      'source': source,
      'source_file': os.path.basename(input_path),
      'sha256': sha256_of(input_path),
      **(extra_metadata or {}),
  }
  pretrained.save_backbone(output_dir, variables, metadata, overwrite=overwrite)
  return variables, metadata


# ---------------------------------------------------------------------------
# Named weights (explicit, opt-in network access).
# ---------------------------------------------------------------------------


def default_download_dir(source: str) -> str:
  """Where torch.hub / Keras cache these files, so an existing download is reused."""
  if source == 'torchvision':
    cache = os.environ.get('XDG_CACHE_HOME', os.path.join('~', '.cache'))
    return os.path.join(os.path.expanduser(os.environ.get('TORCH_HOME', os.path.join(cache, 'torch'))),
                        'hub', 'checkpoints')
  return os.path.join(os.path.expanduser(os.environ.get('KERAS_HOME', os.path.join('~', '.keras'))), 'models')


def named_weights(source: str) -> list[str]:
  table = TORCHVISION_WEIGHTS if source == 'torchvision' else KERAS_WEIGHTS
  return sorted({name for name, _ in table})


def resolve_input(source: str, name: str, *, depth: Optional[int], download_dir: Optional[str],
                  output_dir: str) -> tuple[str, dict[str, Any]]:
  """Returns (file path, metadata about its origin) for a file path or named weights.

  A named file already in ``download_dir`` is used as is (after its checksum);
  otherwise it is fetched. Offline, this fails at once with the URL and the
  command to run once the file has been copied here.
  """
  if os.path.exists(name) or name not in named_weights(source):
    return name, {}
  depth = depth or 50
  if source == 'torchvision':
    url = TORCHVISION_WEIGHTS.get((name, depth))
    expected_hash = re.search(r'-([0-9a-f]{8})\.pth$', url).group(1) if url else ''
  else:
    url, expected_hash = KERAS_WEIGHTS.get((name, depth), (None, ''))
  if url is None:
    table = TORCHVISION_WEIGHTS if source == 'torchvision' else KERAS_WEIGHTS
    available = sorted(d for n, d in table if n == name)
    raise ValueError(f'No {source} {name} weights for ResNet-{depth}; they exist for depths {available}.')
  directory = download_dir or default_download_dir(source)
  path = os.path.join(directory, os.path.basename(url))
  if not os.path.isfile(path):
    _download(url, path, source=source, output_dir=output_dir)
  _verify_checksum(path, expected_hash, url)
  return path, {'weights_name': name, 'url': url}


def _download(url: str, path: str, *, source: str, output_dir: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.part')
  print(f'Downloading {url} to {path} ...', file=sys.stderr)
  try:
    with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
      shutil.copyfileobj(response, out)
    os.replace(tmp, path)
  except (urllib.error.URLError, OSError) as err:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise DownloadError(
        f'Could not download {url} ({getattr(err, "reason", err)}); this machine may be offline. Fetch the file '
        f'on a machine with network access:\n  curl -L -O {url}\ncopy it here and run:\n  python -m '
        f'scfa_jax.tools.port_weights --source {source} --input {os.path.basename(url)} --output {output_dir}'
    ) from err


def _verify_checksum(path: str, expected: str, url: str) -> None:
  """torchvision: the sha256 prefix in the file name; Keras: the md5 Keras lists."""
  if not expected:
    return
  digest = hashlib.md5() if len(expected) == 32 else hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  if not digest.hexdigest().startswith(expected):
    raise DownloadError(f'{path} does not have the checksum of {url} (expected {expected}, got '
                        f'{digest.hexdigest()[:len(expected)]}): an incomplete or different download. Delete it and '
                        f'run again.')


# ---------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='python -m scfa_jax.tools.port_weights', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='Named weights: torchvision ' + ', '.join(named_weights('torchvision')) + ' (depths 18-152); keras '
      + ', '.join(named_weights('keras')) + ' (depths 50, 101, 152; fetched without top).')
  parser.add_argument('--source', required=True, choices=sorted(LAYOUTS),
                      help='Weights family: torchvision (also timm; .pth/.pt/.bin need torch, .safetensors does not) '
                      'or keras (legacy .h5, with or without top).')
  parser.add_argument('--input', required=True, help='Weights file, or a named set of weights (see below).')
  parser.add_argument('--output', required=True, help='Directory to write; pass it as config.model.init_from.')
  parser.add_argument('--depth', type=int, choices=sorted(resnet.DEPTHS), default=None,
                      help='Expected ResNet depth (checked against the file); selects the depth of named weights '
                      '(default 50).')
  parser.add_argument('--download_dir', default=None,
                      help='Cache for named weights (default: the torch.hub or Keras cache).')
  parser.add_argument('--overwrite', action='store_true', help='Replace an existing backbone in --output.')
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the porter; errors print one message (no traceback) and exit with status 1."""
  parser = _parser()
  args = parser.parse_args(argv)
  try:
    path, origin = resolve_input(args.source, args.input, depth=args.depth, download_dir=args.download_dir,
                                 output_dir=args.output)
    _, metadata = port(args.source, path, args.output, depth=args.depth, overwrite=args.overwrite,
                       extra_metadata=origin)
  except (ValueError, OSError, ImportError, DownloadError) as err:
    parser.exit(1, f'port_weights: error: {err}\n')
  print(f'Ported a {backbone_metadata.describe(metadata)} from {path} (sha256 {metadata["sha256"][:16]}...) to '
        f'{os.path.abspath(args.output)}; its inputs are preprocessed as {metadata["preprocessing"]!r}.\n'
        f'Train with: --config.model.init_from={os.path.abspath(args.output)} '
        f'--config.model.depth={metadata["depth"]} --config.model.variant={metadata["variant"]} '
        f'--config.model.width={metadata["width"]} --config.data.preprocessing=auto')
  return 0


if __name__ == '__main__':
  sys.exit(main())
