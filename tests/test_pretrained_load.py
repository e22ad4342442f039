"""Loading a ported backbone into a run: config.model.init_from and the preprocessing it implies."""

import json
import os
import socket
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scfa_jax import config as config_lib
from scfa_jax.models import backbone_metadata
from scfa_jax.models import pretrained
from scfa_jax.models import resnet
from scfa_jax.models import scfa
from scfa_jax.tools import port_weights
from scfa_jax.training import initial_state
from tests import weights_fixtures as wf

IMAGE_SHAPE = (64, 64, 3)


def _model_config(**overrides):
  model_config = config_lib.get_config().model
  model_config.update(dict(proj_hidden_dim=32, proj_dim=8, sync_batch_norm=False, **overrides))
  return model_config


@pytest.fixture(scope='module')
def ported_resnet18(tmp_path_factory):
  """A torchvision ResNet-18 (random weights) through the porter: (directory, variables right after porting)."""
  torch = wf.require('torch')
  directory = tmp_path_factory.mktemp('ported')
  path = directory / 'resnet18-random.pth'
  torch.save(wf.torchvision_resnet(18, seed=7).state_dict(), path)
  variables, _ = port_weights.port('torchvision', str(path), str(directory / 'backbone_dir'))
  return str(directory / 'backbone_dir'), variables


@pytest.fixture(scope='module')
def fresh_variables():
  """Stand-ins for freshly initialised SCFA variables (ResNet-18 encoder), as numpy arrays on the host.

  Random arrays of the shapes ``model.init`` gives (``jax.eval_shape``): the tree
  is what matters here, and compiling the real init takes seconds.
  """
  model = scfa.create_model(_model_config(depth=18))
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1,) + IMAGE_SHAPE))
  rng = np.random.RandomState(0)
  return jax.tree.map(lambda s: rng.uniform(0.5, 1.5, s.shape).astype(s.dtype), shapes)


@pytest.mark.slow
def test_round_trip_into_a_train_state(ported_resnet18, monkeypatch):
  directory, ported = ported_resnet18

  def no_network(*args, **kwargs):
    raise AssertionError(f'network access while loading weights: {args}')

  monkeypatch.setattr(urllib.request, 'urlopen', no_network)
  monkeypatch.setattr(socket.socket, 'connect', no_network)
  model_config = _model_config(depth=18, init_from=directory)
  model = scfa.create_model(model_config)
  state = initial_state.create_train_state(jax.random.key(1), model, IMAGE_SHAPE, optax.adam(1e-3), model_config)

  images = np.random.RandomState(0).randn(2, *IMAGE_SHAPE).astype(np.float32)
  out = jax.jit(model.apply)({'params': state.params, 'batch_stats': state.batch_stats}, images)
  _, expected = jax.jit(resnet.ResNet(depth=18, num_classes=1000).apply)(ported, images)
  # Two programs (SCFA's model, the bare ResNet) compiled apart: equal to float32 round-off (2.3e-6 measured on
  # features near 1 with XLA:CPU's elemental emitters); one weight left unloaded moves them by far more.
  np.testing.assert_allclose(np.asarray(out['features']), np.asarray(expected), rtol=1e-5, atol=1e-5)
  assert 'head' not in state.params['encoder']


def test_load_encoder_replaces_only_the_encoder(ported_resnet18, fresh_variables):
  directory, ported = ported_resnet18
  loaded = pretrained.load_encoder(fresh_variables, _model_config(depth=18, init_from=directory))
  assert loaded['params']['projection'] is fresh_variables['params']['projection']
  np.testing.assert_array_equal(loaded['params']['encoder']['stage3_block1']['conv2']['kernel'],
                                ported['params']['stage3_block1']['conv2']['kernel'])
  np.testing.assert_array_equal(loaded['batch_stats']['encoder']['stem_bn']['var'],
                                ported['batch_stats']['stem_bn']['var'])
  # The input is left as it was.
  assert not np.array_equal(fresh_variables['batch_stats']['encoder']['stem_bn']['var'],
                            ported['batch_stats']['stem_bn']['var'])


@pytest.mark.parametrize('field,value,fix', [
    ('depth', 50, 'config.model.depth=18'),
    ('width', 32, 'config.model.width=64'),
    ('variant', 'v1', "config.model.variant='v1.5'"),
])
def test_architecture_mismatch_is_named_with_its_fix(ported_resnet18, fresh_variables, field, value, fix):
  directory, _ = ported_resnet18
  overrides = {'depth': 18, field: value}
  with pytest.raises(ValueError, match=f'config.model.{field}=') as exc:
    pretrained.load_encoder(fresh_variables, _model_config(init_from=directory, **overrides))
  assert fix in str(exc.value) and 'ResNet-18' in str(exc.value)


def test_missing_and_misshaped_arrays_are_listed(ported_resnet18, fresh_variables, tmp_path):
  directory, ported = ported_resnet18
  params = jax.tree.map(np.asarray, ported['params'])
  del params['stage4_block1']['bn2']
  params['stem_conv']['kernel'] = np.zeros((7, 7, 3, 32), np.float32)
  params['extra'] = {'kernel': np.zeros(3, np.float32)}
  damaged = str(tmp_path / 'damaged')
  pretrained.save_backbone(damaged, {'params': params, 'batch_stats': ported['batch_stats']},
                           backbone_metadata.read(directory))
  with pytest.raises(ValueError) as exc:
    pretrained.load_encoder(fresh_variables, _model_config(depth=18, init_from=damaged))
  message = str(exc.value)
  assert 'missing (2): stage4_block1/bn2/bias, stage4_block1/bn2/scale' in message, message
  assert 'unexpected (1): extra/kernel' in message, message
  assert 'stem_conv/kernel: (7, 7, 3, 32) instead of (7, 7, 3, 64)' in message, message


def test_directories_that_are_not_ported_backbones(ported_resnet18, fresh_variables, tmp_path):
  with pytest.raises(FileNotFoundError, match=f'{tmp_path}/{backbone_metadata.METADATA_FILE} not found.*port_weights'):
    pretrained.load_encoder(fresh_variables, _model_config(depth=18, init_from=str(tmp_path)))

  (tmp_path / backbone_metadata.METADATA_FILE).write_text(json.dumps({'format_version': 1, 'architecture': 'vit'}))
  with pytest.raises(ValueError, match=r"lacks the fields \['depth'"):
    backbone_metadata.read(str(tmp_path))

  directory, _ = ported_resnet18
  metadata = backbone_metadata.read(directory)
  (tmp_path / backbone_metadata.METADATA_FILE).write_text(json.dumps(metadata))  # JSON without its checkpoint
  with pytest.raises(FileNotFoundError, match='incomplete'):
    pretrained.load_encoder(fresh_variables, _model_config(depth=18, init_from=str(tmp_path)))


def test_preprocessing_follows_the_checkpoint(ported_resnet18, tmp_path):
  directory, _ = ported_resnet18
  assert backbone_metadata.preprocessing_for(_model_config(init_from=directory), 'auto') == 'imagenet'
  assert backbone_metadata.preprocessing_for(_model_config(init_from=directory), 'imagenet') == 'imagenet'
  assert backbone_metadata.preprocessing_for(_model_config(), 'auto') == 'imagenet'
  assert backbone_metadata.preprocessing_for(_model_config(), 'unit') == 'unit'
  with pytest.raises(ValueError, match="preprocessing='caffe' contradicts .*expect 'imagenet'.*auto"):
    backbone_metadata.preprocessing_for(_model_config(init_from=directory), 'caffe')
  with pytest.raises(ValueError, match='expected auto or one of'):
    backbone_metadata.preprocessing_for(_model_config(), 'bgr')

  keras_like = str(tmp_path / 'keras_like')
  os.makedirs(keras_like)
  metadata = {**backbone_metadata.read(directory), 'variant': 'v1', 'preprocessing': 'caffe', 'source': 'keras'}
  with open(os.path.join(keras_like, backbone_metadata.METADATA_FILE), 'w') as f:
    json.dump(metadata, f)
  assert backbone_metadata.preprocessing_for(_model_config(init_from=keras_like, variant='v1'), 'auto') == 'caffe'
  with pytest.raises(ValueError, match="expect 'caffe'"):
    backbone_metadata.preprocessing_for(_model_config(init_from=keras_like, variant='v1'), 'imagenet')
