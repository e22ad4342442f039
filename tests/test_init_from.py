"""``config.model.init_from`` from its JSON alone: ported weights or a workdir, a chain of workdirs, bad folders."""

import json

import pytest

from scfa_jax import config as base_config
from scfa_jax import errors
from scfa_jax.inference import predictor as predictor_lib
from scfa_jax.models import backbone_metadata
from scfa_jax.training import init_from
from scfa_jax.training import workdir_config

CAFFE_RESNET50 = {'format_version': 1, 'architecture': 'resnet', 'depth': 50, 'width': 64, 'variant': 'v1',
                  'preprocessing': 'caffe', 'source': 'keras', 'sha256': '0' * 64}


def _config(init_from_dir: str = '', preprocessing: str = 'auto'):
  config = base_config.get_config()
  config.data.name = 'synthetic_motion'
  config.data.preprocessing = preprocessing
  config.model.update(depth=50, width=64, variant='v1', init_from=init_from_dir)
  return config


def _workdir(path, config) -> str:
  """A trained run's folder as far as init_from reads it: config.json and checkpoints/."""
  (path / 'checkpoints').mkdir(parents=True)
  (path / workdir_config.CONFIG_FILE).write_text(json.dumps(config.to_dict()))
  return str(path)


@pytest.fixture
def chain(tmp_path):
  """Keras (caffe-normalised) weights -> a self-supervised workdir -> a fine-tuned workdir, all 'auto'."""
  weights = tmp_path / 'weights'
  weights.mkdir()
  (weights / backbone_metadata.METADATA_FILE).write_text(json.dumps(CAFFE_RESNET50))
  pretrained_run = _workdir(tmp_path / 'ssl', _config(str(weights)))
  return str(weights), pretrained_run, _workdir(tmp_path / 'finetuned', _config(pretrained_run))


def test_auto_pixels_follow_a_chain_of_workdirs_to_the_weights(chain):
  weights, pretrained_run, finetuned = chain
  assert not init_from.is_workdir(weights) and init_from.is_workdir(finetuned) and not init_from.is_workdir('')
  for source in chain:
    init_from.check(_config(source))
    assert init_from.preprocessing(_config(source)) == 'caffe'
  assert init_from.preprocessing(_config(finetuned, 'unit')) == 'unit'  # explicit, after a workdir: as given
  assert init_from.preprocessing(_config()) == 'imagenet'
  with pytest.raises(errors.ConfigError, match="contradicts .*weights/scfa_backbone.json"):
    init_from.check(_config(weights, 'imagenet'))
  # Inference on a workdir without saved heads resolves its pixels the way training did.
  assert predictor_lib._preprocessing(_config(finetuned)) == 'caffe'  # pylint: disable=protected-access


def test_a_workdir_that_cannot_start_the_run_is_named_in_one_line(chain, tmp_path):
  _, pretrained_run, _ = chain
  other = _config(pretrained_run)
  other.model.depth = 18
  with pytest.raises(errors.ConfigError, match=r"init_from='.*ssl' is a workdir whose encoder does not fit .*"
                                               r"depth=18 here, 50 there"):
    init_from.check(other)
  untrained = tmp_path / 'untrained'
  untrained.mkdir()
  (untrained / workdir_config.CONFIG_FILE).write_text(json.dumps(_config().to_dict()))
  with pytest.raises(errors.MissingFilesError, match='holds config.json but no checkpoints/'):
    init_from.check(_config(str(untrained)))
  (untrained / workdir_config.CONFIG_FILE).write_text('{"model": ')
  with pytest.raises(errors.BadFilesError, match=f'{untrained}/config.json: not valid JSON'):
    init_from.check(_config(str(untrained)))
