"""The pure checks behind "every bad input is refused before work": config fields, splits, workdir configs."""

import functools
import importlib
import json
import os

import numpy as np
import pytest

from scfa_jax import config as base_config
from scfa_jax import config_validation
from scfa_jax import errors
from scfa_jax.evaluation import finetune
from scfa_jax.training import workdir_config
from tests.conftest import override

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**fields):
  """The default config with dotted ``fields`` set, e.g. _config(**{'loss.name': 'x'})."""
  config = base_config.get_config()
  config.data.name = 'synthetic_motion'
  return override(config, fields)


@pytest.mark.parametrize('name', sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, 'configs'))
                                        if f.endswith('.py')))
def test_every_shipped_config_is_valid(name):
  config = importlib.import_module(f'configs.{name}').get_config()
  config.data.name = config.data.name or 'video_folder'
  assert config_validation.problems(config, device_count=8) == []


@pytest.mark.parametrize('field,value,allowed', [
    ('data.train_sampling', 'random', "'segment', 'random_sorted', 'uniform'"),
    ('data.eval_sampling', 'middle', "'segment', 'random_sorted', 'uniform'"),
    ('data.preprocessing', 'bgr', "'auto', 'imagenet', 'caffe', 'unit'"),
    ('loss.name', 'simclr', "'supcon', 'cross_entropy'"),
    ('model.variant', 'v2', "'v1.5', 'v1'"),
    ('model.dtype', 'float16', "'float32', 'bfloat16'"),
    ('model.depth', 20, '10, 18, 34, 50, 101, 152'),
    ('eval.knn_k', 0, '>= 1'),
    ('eval.num_test_clips', 0, '>= 1'),
    ('eval.knn_temperature', 0.0, '> 0'),
    ('loss.temperature', -0.07, '> 0'),
    ('data.max_bad_fraction', 1.5, 'in [0.0, 1.0]'),
    ('train.num_epochs', 0, '>= 1'),
    ('optim.learning_rate', 0.0, '> 0'),
    ('eval.finetune_learning_rate', -1e-4, '> 0'),
    ('train.batch_size', 0, '>= 1'),
    ('eval.batch_size', -8, '>= 1'),
    ('data.tile_size', 0, '>= 1'),
    ('data.grid_rows', 9, 'in [1, 8]'),
    ('data.grid_cols', 0, 'in [1, 8]'),
    ('train.max_steps', 0, '-1 (all epochs) or >= 1'),
    ('data.augment.hue', 0.7, 'in [0.0, 0.5]'),
    ('data.augment.crop_scale', (0.8, 0.5), '0 < min <= max <= 1'),
    ('eval.retrieval_ks', (0, 5), 'cut-offs >= 1'),
    ('data.name', '', 'a dataset name'),
])
def test_a_bad_value_is_named_with_what_is_allowed(field, value, allowed):
  found = config_validation.problems(_config(**{field: value}), device_count=1)
  assert found == [f'config.{field}={value!r} is not allowed: expected {found[0].split("expected ")[1]}']
  assert allowed in found[0]


def test_per_device_batch_norm_is_refused_on_the_jit_path():
  """model.sync_batch_norm=False would be silently ignored by the jit path (its BatchNorm is global)."""
  assert config_validation.problems(_config(**{'model.sync_batch_norm': False}), device_count=8) == []  # pmap
  assert config_validation.problems(_config(**{'train.parallelism': 'jit'}), device_count=8) == []
  with pytest.raises(errors.ConfigError, match=r"^config.model.sync_batch_norm=False needs "
                     r"config.train.parallelism='pmap' \(the jit path's BatchNorm is always over the global batch\)"):
    config_validation.validate(_config(**{'model.sync_batch_norm': False, 'train.parallelism': 'jit'}), device_count=8)


def test_parallelism_is_checked_when_present():
  config = _config()
  config.train.parallelism = 'jit'
  assert config_validation.problems(config, device_count=1) == []
  config.train.parallelism = 'pjit'
  assert config_validation.problems(config, device_count=1) == [
      "config.train.parallelism='pjit' is not allowed: expected one of 'pmap', 'jit'."]


def test_grid_limits_keep_the_single_frame_baseline():
  assert config_validation.problems(_config(**{'data.grid_rows': 1, 'data.grid_cols': 1}), device_count=1) == []
  assert config_validation.problems(_config(**{'data.grid_rows': 8, 'data.grid_cols': 8}), device_count=1) == []


def test_batch_sizes_must_split_over_the_devices():
  config = _config(**{'train.batch_size': 12, 'eval.batch_size': 20})
  assert config_validation.problems(config, device_count=4) == []
  assert config_validation.problems(config, device_count=None) == []  # main's first check: before JAX counts them
  found = config_validation.problems(config, device_count=8)
  assert found == ['config.train.batch_size=12 is not allowed: expected a multiple of the 8 devices (it is split '
                   'over them).',
                   'config.eval.batch_size=20 is not allowed: expected a multiple of the 8 devices (it is split '
                   'over them).']
  with pytest.raises(errors.ConfigError, match=r'^2 config fields cannot work:\n  config.train.batch_size=12') as e:
    config_validation.validate(config, device_count=8)
  assert e.value.exit_code == 2


def test_splits_and_frames_are_checked_against_the_dataset():
  config = _config(**{'data.test_split': 'validation', 'train.batch_size': 64, 'data.frames_key': 'video'})
  found = config_validation.dataset_problems(config, {'train': 24, 'test': 12}, ['frames', 'label'],
                                             dataset='synthetic_motion/tiny/1.0.0', process_count=1)
  assert found == [
      "config.data.frames_key='video' is not allowed: expected a feature of synthetic_motion/tiny/1.0.0: frames, "
      'label.',
      "config.data.test_split='validation' is not allowed: expected a split of synthetic_motion/tiny/1.0.0: test, "
      'train.',
      'config.train.batch_size=64 is not allowed: expected at most the 24 videos of split \'train\' of '
      'synthetic_motion/tiny/1.0.0.']
  config = _config(**{'train.batch_size': 8})
  assert config_validation.dataset_problems(config, {'train': 24, 'test': 12}, ['frames', 'label'], dataset='d',
                                           process_count=1) == []


def test_config_errors_are_value_errors_and_user_errors():
  assert issubclass(errors.ConfigError, ValueError) and issubclass(errors.MissingFilesError, FileNotFoundError)
  assert errors.ConfigError.exit_code == 2 and errors.MissingFilesError.exit_code == 1


# --- a workdir remembers its config ---------------------------------------------------------------------------


@pytest.mark.parametrize('field,value,must_match', [
    ('optim.learning_rate', 3e-4, True),
    ('train.batch_size', 32, True),
    ('train.num_epochs', 50, True),
    ('seed', 1, True),
    ('model.depth', 18, True),
    ('data.grid_rows', 2, True),
    ('data.train_sampling', 'uniform', True),
    ('data.preprocessing', 'unit', True),
    ('data.builder_config', 'split2', True),
    ('loss.temperature', 0.1, True),
    ('model.init_from', '/weights', True),
    ('eval.knn_k', 5, False),
    ('eval.finetune_epochs', 3, False),
    ('ckpt.every_steps', 10, False),
    ('train.log_every_steps', 1, False),
    ('train.max_steps', 10, False),
    ('data.data_dir', '/elsewhere', False),
    ('data.manual_dir', '/downloads', False),
    ('data.prefetch_to_device', 4, False),
    ('model.classifier_hidden_dim', 256, False),  # read only by the fine-tune (keyed by it) under SupCon
    ('model.classifier_init', 'probe', False),  # the same
])
def test_diff_configs_keeps_only_what_changes_training(field, value, must_match):
  old = workdir_config.flatten(_config())
  new = workdir_config.flatten(_config(**{field: value}))
  changes = workdir_config.diff_configs(old, new)
  if must_match:
    assert changes == [workdir_config.Change(field, old[field], new[field])]
  else:
    assert changes == []


def test_the_classifier_head_is_part_of_a_cross_entropy_run():
  old = workdir_config.flatten(_config(**{'loss.name': 'cross_entropy'}))
  new = workdir_config.flatten(_config(**{'loss.name': 'cross_entropy', 'model.classifier_hidden_dim': 64}))
  assert [c.key for c in workdir_config.diff_configs(old, new)] == ['model.classifier_hidden_dim']
  new = workdir_config.flatten(_config(**{'loss.name': 'cross_entropy', 'model.classifier_init': 'probe'}))
  assert [c.key for c in workdir_config.diff_configs(old, new)] == ['model.classifier_init']


def test_a_field_added_by_a_newer_version_compares_with_its_default():
  old = workdir_config.flatten(_config())
  del old['data.shuffle_frames']  # a config.json written before the field existed
  assert workdir_config.diff_configs(old, workdir_config.flatten(_config())) == []
  changed = workdir_config.flatten(_config(**{'data.shuffle_frames': True}))
  assert workdir_config.diff_configs(old, changed) == [workdir_config.Change('data.shuffle_frames', False, True)]


def test_check_writes_compares_refuses_and_records(tmp_path):
  workdir = str(tmp_path)
  assert workdir_config.check(_config(), workdir, trained=False) == []
  with open(tmp_path / workdir_config.CONFIG_FILE) as f:
    assert json.load(f)['data']['name'] == 'synthetic_motion'
  # Nothing trained yet: a new config simply replaces the record.
  assert workdir_config.check(_config(seed=3), workdir, trained=False) == []
  assert workdir_config.check(_config(**{'seed': 3, 'eval.knn_k': 1}), workdir, trained=True) == []

  changed = _config(**{'seed': 3, 'optim.learning_rate': 0.5})
  with pytest.raises(errors.ConfigError) as e:
    workdir_config.check(changed, workdir, trained=True)
  assert str(e.value).splitlines()[1] == '  config.optim.learning_rate: 0.0001 in the workdir, 0.5 now'
  assert '--allow_config_change' in str(e.value)
  assert not (tmp_path / workdir_config.CHANGES_FILE).exists()

  allowed = workdir_config.check(changed, workdir, trained=True, allow_change=True)
  assert allowed == [workdir_config.Change('optim.learning_rate', 1e-4, 0.5)]
  with open(tmp_path / workdir_config.CHANGES_FILE) as f:
    history = json.load(f)
  assert [(h['mode'], h['changes']) for h in history] == [
      ('train', [{'key': 'optim.learning_rate', 'old': 1e-4, 'new': 0.5}])]
  assert workdir_config.check(changed, workdir, trained=True) == []  # the workdir now remembers the new value


def test_an_allowed_change_in_eval_mode_is_recorded_but_not_adopted(tmp_path):
  workdir = str(tmp_path)
  workdir_config.check(_config(), workdir, trained=False)
  changed = _config(**{'data.eval_sampling': 'segment'})
  workdir_config.check(changed, workdir, trained=True, allow_change=True, mode='eval')
  with pytest.raises(errors.ConfigError, match='data.eval_sampling'):
    workdir_config.check(changed, workdir, trained=True)


def test_the_early_refusal_comes_only_where_check_is_sure_to_refuse(tmp_path):
  """main refuses a changed config before its imports only where check() will: a finished orbax checkpoint."""
  from scfa_jax.training import checkpointing  # pylint: disable=g-import-not-at-top
  workdir, checkpoints = str(tmp_path), str(tmp_path / 'checkpoints')
  workdir_config.check(_config(), workdir, trained=False)
  changed = _config(**{'optim.learning_rate': 0.5})
  os.makedirs(os.path.join(checkpoints, '2.orbax-checkpoint-tmp-1733'))  # a save cut short: nothing trained yet
  assert not checkpointing.has_checkpoint(checkpoints)
  workdir_config.refuse_before_imports(changed, workdir, allow_change=False)  # check() will replace the record

  manager = checkpointing.create_manager(workdir, _config().ckpt)
  checkpointing.save(manager, 2, {'params': np.zeros(3, np.float32)})
  manager.close()
  assert checkpointing.has_checkpoint(checkpoints)
  with pytest.raises(errors.ConfigError) as early:
    workdir_config.refuse_before_imports(changed, workdir, allow_change=False)
  with pytest.raises(errors.ConfigError) as late:
    workdir_config.check(changed, workdir, trained=True)
  assert str(early.value) == str(late.value)
  workdir_config.refuse_before_imports(changed, workdir, allow_change=True)  # allowed: check() records it
  workdir_config.refuse_before_imports(_config(**{'eval.knn_k': 1}), workdir, allow_change=False)  # free field
  workdir_config.refuse_before_imports(changed, 'gs://bucket/run', allow_change=False)  # orbax's to judge
  (tmp_path / workdir_config.CONFIG_FILE).write_text('{"model": ')  # damaged: one line naming it, no traceback
  for refuse in (functools.partial(workdir_config.refuse_before_imports, allow_change=False),
                 functools.partial(workdir_config.check, trained=True)):
    with pytest.raises(errors.BadFilesError, match=f'{tmp_path}/config.json: not valid JSON'):
      refuse(changed, workdir)


def test_finetune_folders_are_keyed_by_their_settings():
  base = _config(**{'eval.finetune_epochs': 1, 'eval.finetune_learning_rate': 1e-3})
  folder = finetune.run_dir('/w', 6, base)
  assert os.path.basename(folder).startswith('from_step_6_ep1_lr0.001_head0_')
  assert finetune.run_dir('/w', 6, _config(**{'eval.finetune_epochs': 1, 'eval.finetune_learning_rate': 1e-3,
                                               'eval.knn_k': 3})) == folder  # evaluation-only settings
  for field, value in [('eval.finetune_epochs', 2), ('eval.finetune_learning_rate', 3e-3),
                       ('model.classifier_hidden_dim', 256), ('optim.weight_decay', 0.1), ('train.batch_size', 32),
                       ('data.augment.flip', True), ('seed', 1)]:
    other = _config(**{'eval.finetune_epochs': 1, 'eval.finetune_learning_rate': 1e-3, field: value})
    assert finetune.run_dir('/w', 6, other) != folder, field
  assert finetune.run_dir('/w', 7, base) != folder


def test_the_allowed_values_are_what_the_implementations_accept():
  """config_validation reads them from the config schema (no TF or JAX): each implementation must agree."""
  from scfa_jax.data import sampling  # pylint: disable=g-import-not-at-top
  from scfa_jax.models import fusion  # pylint: disable=g-import-not-at-top
  from scfa_jax.models import resnet  # pylint: disable=g-import-not-at-top
  from scfa_jax.training import momentum  # pylint: disable=g-import-not-at-top
  assert tuple(sorted(resnet.DEPTHS)) == base_config.RESNET_DEPTHS
  assert (sampling.METHODS, resnet.VARIANTS, momentum.SCHEDULES, fusion.FUSIONS) == (
      base_config.SAMPLING_METHODS, base_config.RESNET_VARIANTS, base_config.MOMENTUM_SCHEDULES, base_config.FUSIONS)
