"""User mistakes: exit code, a message naming the field or file, no traceback.

Bad config values are refused in about a second, before TensorFlow and JAX
import, through the real command line. So are one refusal found once a
dataset is looked up and one found once the devices are known (a few seconds,
most of it those imports): they show that main prints a ``UserError`` in one
line with its exit code. The other refusals found while a dataset is built or
a run starts are the same ``UserError`` raised by ``train_and_evaluate`` in
this process, whose message and exit code are checked here.
"""

import json
import logging
import os
import subprocess
import sys

import ml_collections
import pytest

from scfa_jax import errors
from scfa_jax.models import backbone_metadata
from scfa_jax.training import workdir_config
from tests.test_main import ROOT
from tests.test_main import run_main
from tests.conftest import config_file
from tests.conftest import host_devices

DEMO = '--config=configs/demo.py'
# The tiny run of tests/conftest.py, as config overrides (with data.data_dir=<tiny_data_dir>).
TINY = {'data.builder_config': 'tiny', 'data.grid_rows': 2, 'data.grid_cols': 2, 'data.tile_size': 8,
        'model.depth': 10, 'model.width': 4, 'train.batch_size': 8, 'eval.batch_size': 8, 'eval.after_training': False}


def _flags(overrides: dict) -> list[str]:
  """``overrides`` as command-line flags."""
  return [f'--config.{key}={value}' for key, value in overrides.items()]


def _assert_user_error(proc, code: int, *expected: str) -> None:
  assert proc.returncode == code, proc.stderr[-3000:]
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  error = proc.stderr[proc.stderr.index(': error: '):]
  for text in expected:
    assert text in error, error


# One rule's value and one dataset name (looked up later, in TFDS' registry) through the real command line; every
# rule's message is tested in-process (test_config_rules.py), so a third start-up here would add nothing.
@pytest.mark.parametrize('override,expected', [
    ('--config.eval.knn_k=0', 'config.eval.knn_k=0 is not allowed: expected >= 1'),
    ('--config.data.name=no_such_dataset', "config.data.name='no_such_dataset' is not allowed"),
])
@pytest.mark.slow
def test_a_bad_value_exits_2_before_anything_is_written(tmp_path, override, expected):
  workdir = tmp_path / 'run'
  _assert_user_error(run_main(DEMO, f'--workdir={workdir}', override), 2, expected)
  if 'data.name' not in override:  # an unknown dataset is found while looking it up, after the checks
    assert not workdir.exists()


# main's entry point as ``python -m`` runs it, reporting afterwards which heavy modules it had imported.
RUN_MAIN_AND_LIST_IMPORTS = """
import runpy, sys
sys.argv = ['scfa_jax/main.py'] + sys.argv[1:]
try:
  runpy.run_module('scfa_jax.main', run_name='__main__', alter_sys=True)
finally:
  print(sorted(m for m in ('tensorflow', 'jax', 'flax') if m in sys.modules))
"""


def run_main_before_imports(*args: str) -> subprocess.CompletedProcess:
  """``python -m scfa_jax.main *args``, which must stop before importing TensorFlow, JAX or Flax (in about a
  second, not after their imports)."""
  proc = subprocess.run([sys.executable, '-c', RUN_MAIN_AND_LIST_IMPORTS, *args], cwd=ROOT,
                        env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=120)
  assert proc.stdout.strip() == '[]', proc.stdout + proc.stderr[-2000:]
  return proc


@pytest.mark.parametrize('override,expected', [
    ('--config.eval.knn_k=0', 'config.eval.knn_k=0 is not allowed: expected >= 1'),  # a rule
    ('--config.data.fuse_local_views=True', 'config.data.num_local_views=0: set it >= 1'),  # a combination
])
def test_a_bad_value_is_refused_before_tensorflow_and_jax_are_imported(tmp_path, override, expected):
  _assert_user_error(run_main_before_imports(DEMO, f'--workdir={tmp_path / "run"}', override), 2, expected)


@pytest.mark.slow
def test_batch_not_divisible_by_the_devices(tmp_path):
  proc = run_main(DEMO, f'--workdir={tmp_path / "run"}', '--config.train.batch_size=33',
                  XLA_FLAGS=host_devices(2))
  _assert_user_error(proc, 2, 'config.train.batch_size=33', 'multiple of the 2 devices')


def test_weights_of_another_model(tmp_path):
  weights = tmp_path / 'weights'
  weights.mkdir()
  proc = run_main_before_imports(DEMO, f'--workdir={tmp_path / "run"}', f'--config.model.init_from={weights}')
  _assert_user_error(proc, 1, f'{weights}/{backbone_metadata.METADATA_FILE} not found', 'port_weights')

  metadata = {'format_version': 1, 'architecture': 'resnet', 'depth': 18, 'width': 64, 'variant': 'v1.5',
              'preprocessing': 'imagenet', 'source': 'torchvision', 'sha256': '0' * 64}
  (weights / backbone_metadata.METADATA_FILE).write_text(json.dumps(metadata))
  proc = run_main_before_imports(DEMO, f'--workdir={tmp_path / "run"}', f'--config.model.init_from={weights}')
  _assert_user_error(proc, 2, 'config.model.depth=10 but the checkpoint has depth 18', 'config.model.depth=18')
  assert not (tmp_path / 'run').exists()


def _refusal(config: ml_collections.ConfigDict, workdir, code: int, *expected: str) -> None:
  """``train_and_evaluate`` raises a UserError for ``config``: what main prints in one line, exiting ``code``."""
  from scfa_jax.training import train  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.UserError) as refused:
    train.train_and_evaluate(config, str(workdir))
  message = str(refused.value)
  assert refused.value.exit_code == code, message
  for text in expected:
    assert text in message, message


# Refusals found once a dataset is looked up or built: in this process (main prints a UserError in one line,
# as the command-line cases above show), so that each case costs its own work, not seconds of imports.
def test_missing_manual_folder(tmp_path):
  hmdb = {'data.name': 'hmdb51', 'data.builder_config': 'split1', 'data.data_dir': str(tmp_path / 'tfds')}
  _refusal(config_file('demo', hmdb), tmp_path / 'run', 1, 'hmdb51 is built from files you download by hand',
           '--config.data.manual_dir')
  _refusal(config_file('demo', {**hmdb, 'data.manual_dir': str(tmp_path)}), tmp_path / 'run', 1, f'{tmp_path}: ',
           'hmdb51_org')


def test_too_many_unreadable_clips(tmp_path):
  for name in ('jump/a.avi', 'jump/b.avi', 'wave/c.avi', 'wave/d.avi'):
    (tmp_path / 'videos' / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / 'videos' / name).write_bytes(b'not a video')
  config = config_file('demo', {'data.name': 'video_folder', 'data.data_dir': str(tmp_path / 'tfds'),
                                'data.manual_dir': str(tmp_path / 'videos')})
  _refusal(config, tmp_path / 'run', 1, 'could not be decoded', 'wave/d.avi: OpenCV cannot open it',
           'config.data.max_bad_fraction')


def test_unknown_split_is_refused_before_training(tmp_path, tiny_data_dir):
  config = config_file('demo', {**TINY, 'data.data_dir': tiny_data_dir, 'data.test_split': 'validation'})
  _refusal(config, tmp_path / 'run', 2, "config.data.test_split='validation' is not allowed", 'test, train')
  assert not (tmp_path / 'run' / 'checkpoints').exists()


@pytest.mark.slow(seconds=5)
def test_a_changed_config_is_refused_unless_allowed(tmp_path, tiny_data_dir, caplog):
  from scfa_jax.training import train  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'run'
  tiny = {**TINY, 'data.data_dir': tiny_data_dir, 'train.max_steps': 1}
  train.train_and_evaluate(config_file('demo', tiny), str(workdir))
  with open(workdir / workdir_config.CONFIG_FILE) as f:
    assert json.load(f)['optim']['learning_rate'] == 1e-3

  # Evaluation and run-control settings may change; the learning rate and the seed may not. Through the command
  # line, which refuses before its imports: the same flags give the same config as the run above.
  changed = {'optim.learning_rate': 0.01, 'seed': 3, 'eval.knn_k': 1, 'ckpt.every_steps': 7}
  proc = run_main_before_imports(DEMO, f'--workdir={workdir}', *_flags({**tiny, **changed}))
  _assert_user_error(proc, 2, f'{workdir}/config.json records different training settings (2 field(s) differ)',
                     'config.optim.learning_rate: 0.001 in the workdir, 0.01 now', 'config.seed: 0 in the workdir, 3 now',
                     '--allow_config_change')
  assert 'knn_k' not in proc.stderr.split(': error: ')[1] and 'every_steps' not in proc.stderr.split(': error: ')[1]

  with caplog.at_level(logging.WARNING):
    train.train_and_evaluate(config_file('demo', {**tiny, **changed}), str(workdir), allow_config_change=True)
  assert 'config.optim.learning_rate: 0.001 in the workdir, 0.01 now' in caplog.text  # logged
  with open(workdir / workdir_config.CHANGES_FILE) as f:
    (record,) = json.load(f)
  assert [c['key'] for c in record['changes']] == ['optim.learning_rate', 'seed'] and record['time']
