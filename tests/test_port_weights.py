"""The weight porter against the reference networks, in their real file formats.

Each parity test builds the framework's own ResNet with random weights (and
non-trivial BatchNorm statistics), saves it as users get such files, ports it
with the command-line tool, restores the written checkpoint and compares
pooled features and logits in float32 inference mode: max |diff| <= 1e-4.
"""

import functools
import os
import sys
import urllib.error

import h5py
import jax
import numpy as np
import pytest

from scfa_jax.data import preprocessing
from scfa_jax.models import backbone_metadata
from scfa_jax.models import pretrained
from scfa_jax.models import resnet
from scfa_jax.tools import port_weights
from tests import weights_fixtures as wf

ATOL = 1e-4


@pytest.fixture(scope='module')
def images():
  return np.random.RandomState(0).randn(2, 224, 224, 3).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _apply_fn(depth, variant, num_classes):
  return jax.jit(resnet.ResNet(depth=depth, variant=variant, num_classes=num_classes).apply)


def _port(source, input_path, output_dir, *extra):
  assert port_weights.main(['--source', source, '--input', str(input_path), '--output', str(output_dir), *extra]) == 0
  return backbone_metadata.read(str(output_dir))


def _port_error(capsys, source, input_path, output_dir, *extra) -> str:
  with pytest.raises(SystemExit) as exc:
    port_weights.main(['--source', source, '--input', str(input_path), '--output', str(output_dir), *extra])
  assert exc.value.code == 1
  return capsys.readouterr().err


def _assert_parity(output_dir, images, ref_features, ref_logits):
  """Runs the restored checkpoint and compares with the reference outputs."""
  metadata = backbone_metadata.read(str(output_dir))
  variables = pretrained.restore_backbone(str(output_dir))
  logits, features = _apply_fn(metadata['depth'], metadata['variant'], metadata['num_classes'])(variables, images)
  assert np.abs(ref_features).max() > 0.5  # the comparison is not between near-zero vectors
  np.testing.assert_allclose(np.asarray(features), ref_features, rtol=0, atol=ATOL)
  if ref_logits is None:
    assert logits is None
  else:
    np.testing.assert_allclose(np.asarray(logits), ref_logits, rtol=0, atol=ATOL)


def _assert_nontrivial_bn_stats(state_dict):
  means = np.concatenate([v.numpy().ravel() for k, v in state_dict.items() if k.endswith('running_mean')])
  variances = np.concatenate([v.numpy().ravel() for k, v in state_dict.items() if k.endswith('running_var')])
  assert np.abs(means).max() > 0.1 and np.abs(variances - 1).max() > 0.1


# ---------------------------------------------------------------------------
# Parity, one test per file format.
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize('depth', [18, 50])
def test_torchvision_pth_parity(depth, tmp_path, images):
  torch = wf.require('torch')
  model = wf.torchvision_resnet(depth)
  _assert_nontrivial_bn_stats(model.state_dict())
  path = tmp_path / f'resnet{depth}-random.pth'
  torch.save(model.state_dict(), path)

  metadata = _port('torchvision', path, tmp_path / 'out')

  assert {k: metadata[k] for k in ('depth', 'width', 'variant', 'num_classes', 'preprocessing', 'source')} == {
      'depth': depth, 'width': 64, 'variant': 'v1.5', 'num_classes': 1000, 'preprocessing': 'imagenet',
      'source': 'torchvision'}
  assert metadata['sha256'] == port_weights.sha256_of(str(path))
  assert metadata['source_file'] == path.name
  _assert_parity(tmp_path / 'out', images, *wf.torch_features_and_logits(model, images))


@pytest.mark.slow
def test_timm_safetensors_parity(tmp_path, images):
  torch = wf.require('torch')
  timm = wf.require('timm')
  safetensors_torch = wf.require('safetensors.torch')
  torch.manual_seed(0)
  model = wf.randomize_torch_resnet(timm.create_model('resnet50', pretrained=False), seed=3)
  _assert_nontrivial_bn_stats(model.state_dict())
  path = tmp_path / 'model.safetensors'  # the name timm's hub files have
  safetensors_torch.save_file(model.state_dict(), str(path))

  metadata = _port('torchvision', path, tmp_path / 'out')

  assert (metadata['depth'], metadata['variant'], metadata['preprocessing']) == (50, 'v1.5', 'imagenet')
  _assert_parity(tmp_path / 'out', images, *wf.torch_features_and_logits(model, images))


@pytest.fixture(scope='module')
def keras_model():
  return wf.keras_resnet50(seed=0)


@pytest.fixture(scope='module')
def keras_files(keras_model, tmp_path_factory):
  """The published file names: with top, and without (the layers up to conv5_block3_out)."""
  keras = wf.require('keras')
  directory = tmp_path_factory.mktemp('keras')
  with_top = directory / 'resnet50_weights_tf_dim_ordering_tf_kernels.h5'
  notop = directory / 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5'
  wf.save_keras_legacy_h5(keras_model, str(with_top))
  wf.save_keras_legacy_h5(keras.Model(keras_model.input, keras_model.get_layer('conv5_block3_out').output), str(notop))
  return {'with_top': with_top, 'notop': notop}


@pytest.mark.slow
@pytest.mark.parametrize('top', ['with_top', 'notop'])
def test_keras_h5_parity(top, keras_model, keras_files, tmp_path, images):
  with h5py.File(keras_files[top], 'r') as f:  # the legacy layout, not Keras 3's .weights.h5
    assert 'layer_names' in f.attrs and 'weight_names' in f['conv2_block1_0_conv'].attrs

  metadata = _port('keras', keras_files[top], tmp_path / 'out')

  assert (metadata['depth'], metadata['variant'], metadata['preprocessing']) == (50, 'v1', 'caffe')
  assert metadata['num_classes'] == (1000 if top == 'with_top' else 0)
  features, logits = wf.keras_features_and_logits(keras_model, images)
  _assert_parity(tmp_path / 'out', images, features, logits if top == 'with_top' else None)


def test_keras_reader_accepts_tf_keras_names_and_model_files(keras_files, tmp_path):
  """tf.keras files name weights 'conv1_conv/kernel:0'; whole-model .h5 files nest them under model_weights."""
  reference = port_weights.read_keras_h5(str(keras_files['notop']))
  renamed = tmp_path / 'tf_keras_names.h5'
  nested = tmp_path / 'model_file.h5'
  with h5py.File(keras_files['notop'], 'r') as src, h5py.File(renamed, 'w') as a, h5py.File(nested, 'w') as b:
    layers = port_weights._h5_attr_list(src, 'layer_names')
    for out_root in (a, b.create_group('model_weights')):
      # Fixed-length byte strings, as h5py stored the attributes of the published files.
      out_root.attrs['layer_names'] = np.array([layer.encode() for layer in layers])
      for layer in layers:
        names = port_weights._h5_attr_list(src[layer], 'weight_names')
        group = out_root.create_group(layer)
        group.attrs['weight_names'] = np.array([f'{n}:0'.encode() for n in names])
        for n in names:
          group.create_dataset(f'{n}:0', data=src[layer][n][()])
  for path in (renamed, nested):
    read = port_weights.read_keras_h5(str(path))
    assert read.keys() == reference.keys()
    assert all(np.array_equal(read[k], reference[k]) for k in reference)


def test_recorded_preprocessing_is_what_each_reference_does():
  """'imagenet' and 'caffe' in the metadata reproduce torchvision's and Keras' own input preprocessing."""
  transforms = wf.require('torchvision.transforms')
  keras = wf.require('keras')
  rgb = np.random.RandomState(1).randint(0, 256, (2, 8, 8, 3)).astype(np.uint8)

  torchvision_input = transforms.Compose([transforms.ToTensor(), transforms.Normalize(
      preprocessing.IMAGENET_MEAN_RGB, preprocessing.IMAGENET_STD_RGB)])
  expected = np.stack([torchvision_input(img).numpy().transpose(1, 2, 0) for img in rgb])
  np.testing.assert_allclose(preprocessing.normalize(rgb, 'imagenet'), expected, atol=1e-5)
  # Keras' ResNet50 preprocess_input is the Caffe mode: RGB -> BGR, minus the BGR mean.
  expected = keras.applications.resnet50.preprocess_input(rgb.astype(np.float32))
  np.testing.assert_allclose(preprocessing.normalize(rgb, 'caffe'), expected, atol=1e-4)


# ---------------------------------------------------------------------------
# Wrong inputs.
# ---------------------------------------------------------------------------


@pytest.fixture(scope='module')
def resnet18_pth(tmp_path_factory):
  torch = wf.require('torch')
  model = wf.torchvision_resnet(18, seed=5)
  path = tmp_path_factory.mktemp('r18') / 'resnet18-random.pth'
  torch.save(model.state_dict(), path)
  return path


def test_truncated_files_are_named_as_such(resnet18_pth, keras_files, tmp_path, capsys):
  safetensors_numpy = wf.require('safetensors.numpy')
  full_st = tmp_path / 'full.safetensors'
  safetensors_numpy.save_file(port_weights.read_torch_state_dict(str(resnet18_pth)), str(full_st))
  cases = [('torchvision', resnet18_pth, 'short.pth'), ('torchvision', full_st, 'short.safetensors'),
           ('keras', keras_files['notop'], 'short.h5')]
  for source, full, name in cases:
    short = wf.truncate(str(full), str(tmp_path / name))
    err = _port_error(capsys, source, short, tmp_path / f'out_{name}')
    assert short in err and 'truncated or corrupt' in err, err
    assert not (tmp_path / f'out_{name}' / backbone_metadata.METADATA_FILE).exists()


def test_resnet18_file_given_as_resnet50(resnet18_pth, tmp_path, capsys):
  err = _port_error(capsys, 'torchvision', resnet18_pth, tmp_path / 'out', '--depth', '50')
  assert 'ResNet-18' in err and 'ResNet-50' in err and '--depth 18' in err, err


def test_files_of_other_models(tmp_path, capsys):
  torch = wf.require('torch')
  torchvision = wf.require('torchvision')
  keras = wf.require('keras')
  mobilenet = tmp_path / 'mobilenet_v3_small.pth'
  torch.save(torchvision.models.mobilenet_v3_small().state_dict(), mobilenet)
  err = _port_error(capsys, 'torchvision', mobilenet, tmp_path / 'a')
  assert 'not a torchvision/timm-layout ResNet' in err and 'features.0.0.weight' in err, err

  # ResNet50V2 shares most layer names with ResNet50 but is a pre-activation network.
  v2 = tmp_path / 'resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5'
  wf.save_keras_legacy_h5(keras.applications.ResNet50V2(weights=None, include_top=False), str(v2))
  err = _port_error(capsys, 'keras', v2, tmp_path / 'b')
  assert 'missing' in err and 'conv1_bn/gamma' in err, err
  assert 'unexpected (68)' in err and 'conv2_block1_preact_bn/gamma' in err and 'ResNet-v2' in err, err

  not_weights = tmp_path / 'notes.pth'
  not_weights.write_text('not a checkpoint')
  err = _port_error(capsys, 'torchvision', not_weights, tmp_path / 'c')
  assert str(not_weights) in err and 'Could not read' in err, err


def test_missing_unexpected_and_misshaped_arrays_are_listed(resnet18_pth, tmp_path, capsys):
  safetensors_numpy = wf.require('safetensors.numpy')
  weights = port_weights.read_torch_state_dict(str(resnet18_pth))
  del weights['layer3.1.bn2.running_var']
  weights['layer2.0.conv1.weight'] = np.zeros((128, 64, 1, 1), np.float32)
  weights['layer1.0.se.fc.weight'] = np.zeros((4, 64), np.float32)
  path = tmp_path / 'edited.safetensors'
  safetensors_numpy.save_file(weights, str(path))
  err = _port_error(capsys, 'torchvision', path, tmp_path / 'out')
  assert 'missing (1): layer3.1.bn2.running_var' in err, err
  assert 'unexpected (1): layer1.0.se.fc.weight' in err, err
  assert 'mis-shaped (1): layer2.0.conv1.weight (128, 64, 1, 1)' in err and '(3, 3, 64, 128)' in err, err


def test_keras_files_of_other_layouts(tmp_path, capsys):
  keras = wf.require('keras')
  old = tmp_path / 'old_keras_resnet50.h5'  # keras_applications <= 1.0.6 names
  with h5py.File(old, 'w') as f:
    f.attrs['layer_names'] = [b'conv1', b'bn_conv1', b'res2a_branch2a']
    for layer, weight in (('conv1', 'kernel'), ('bn_conv1', 'gamma'), ('res2a_branch2a', 'kernel')):
      f.create_group(layer).attrs['weight_names'] = [f'{layer}/{weight}:0'.encode()]
      f[layer].create_dataset(f'{layer}/{weight}:0', data=np.zeros(3, np.float32))
  err = _port_error(capsys, 'keras', old, tmp_path / 'a')
  assert 'res2a_branch2a' in err and 'tensorflow/keras-applications/resnet' in err, err

  keras3 = tmp_path / 'tiny.weights.h5'
  tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
  tiny.save_weights(str(keras3))
  err = _port_error(capsys, 'keras', keras3, tmp_path / 'b')
  assert 'Keras 3 `.weights.h5`' in err, err


def test_source_and_extension_must_agree(resnet18_pth, tmp_path, capsys):
  err = _port_error(capsys, 'keras', resnet18_pth, tmp_path / 'out')
  assert 'Did you mean --source torchvision?' in err, err
  err = _port_error(capsys, 'torchvision', tmp_path / 'absent.pth', tmp_path / 'out')
  assert 'no such file' in err, err


def test_pth_without_torch_says_so_but_safetensors_ports(resnet18_pth, tmp_path, capsys, monkeypatch):
  safetensors_numpy = wf.require('safetensors.numpy')
  st = tmp_path / 'resnet18.safetensors'
  safetensors_numpy.save_file(port_weights.read_torch_state_dict(str(resnet18_pth)), str(st))
  monkeypatch.setitem(sys.modules, 'torch', None)  # `import torch` now fails as if not installed
  err = _port_error(capsys, 'torchvision', resnet18_pth, tmp_path / 'a')
  assert 'needs PyTorch' in err and 'pip install torch' in err and '.safetensors' in err, err
  assert _port('torchvision', st, tmp_path / 'b')['depth'] == 18


def test_half_precision_safetensors_are_widened(resnet18_pth, tmp_path):
  safetensors_flax = wf.require('safetensors.flax')
  weights = port_weights.read_torch_state_dict(str(resnet18_pth))
  half = {k: jax.numpy.asarray(v, jax.numpy.bfloat16) for k, v in weights.items() if v.dtype == np.float32}
  path = tmp_path / 'resnet18_bf16.safetensors'
  safetensors_flax.save_file(half, str(path))
  variables, _ = port_weights.port('torchvision', str(path), str(tmp_path / 'out'))
  kernel = variables['params']['stage2_block0']['conv1']['kernel']
  assert kernel.dtype == np.float32
  np.testing.assert_array_equal(kernel, np.asarray(half['layer2.0.conv1.weight'], np.float32).transpose(2, 3, 1, 0))


def test_existing_output_needs_overwrite(resnet18_pth, tmp_path, capsys):
  _port('torchvision', resnet18_pth, tmp_path / 'out')
  err = _port_error(capsys, 'torchvision', resnet18_pth, tmp_path / 'out')
  assert '--overwrite' in err, err
  assert _port('torchvision', resnet18_pth, tmp_path / 'out', '--overwrite')['depth'] == 18


# ---------------------------------------------------------------------------
# Named weights: fetched only on request, never offline.
# ---------------------------------------------------------------------------


def test_named_weights_offline_fail_at_once_with_url_and_next_command(tmp_path, capsys, monkeypatch):
  calls = []

  def offline(url, timeout=None):
    calls.append((url, timeout))
    raise urllib.error.URLError('[Errno -2] Name or service not known')

  monkeypatch.setattr(port_weights.urllib.request, 'urlopen', offline)
  err = _port_error(capsys, 'torchvision', 'IMAGENET1K_V2', tmp_path / 'out', '--download_dir', str(tmp_path / 'dl'))
  url = 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth'
  assert calls == [(url, port_weights._DOWNLOAD_TIMEOUT_S)]
  assert f'curl -L -O {url}' in err, err
  assert (f'python -m scfa_jax.tools.port_weights --source torchvision --input resnet50-11ad3fa6.pth --output '
          f'{tmp_path / "out"}') in err, err
  assert os.listdir(tmp_path / 'dl') == []  # no partial download left behind


def test_named_weights_are_fetched_checked_and_cached(resnet18_pth, tmp_path, monkeypatch):
  digest = port_weights.sha256_of(str(resnet18_pth))
  server = tmp_path / 'server'
  server.mkdir()
  served = server / f'resnet18-{digest[:8]}.pth'
  served.write_bytes(resnet18_pth.read_bytes())
  monkeypatch.setitem(port_weights.TORCHVISION_WEIGHTS, ('IMAGENET1K_V1', 18), served.as_uri())

  metadata = _port('torchvision', 'IMAGENET1K_V1', tmp_path / 'out', '--depth', '18',
                   '--download_dir', str(tmp_path / 'dl'))
  assert (tmp_path / 'dl' / served.name).is_file()
  assert metadata['weights_name'] == 'IMAGENET1K_V1' and metadata['url'] == served.as_uri()
  assert metadata['sha256'] == digest

  # A file in the cache whose content does not match the hash in its name is refused.
  (tmp_path / 'dl' / served.name).write_bytes(b'interrupted')
  with pytest.raises(port_weights.DownloadError, match='checksum'):
    port_weights.resolve_input('torchvision', 'IMAGENET1K_V1', depth=18, download_dir=str(tmp_path / 'dl'),
                               output_dir=str(tmp_path / 'out2'))
