"""User mistakes through the real command line: exit code, a message naming the field or file, no traceback.

Bad config values are refused in about a second, before TensorFlow and JAX
import; the cases refused once a dataset is looked up take a few seconds
(most of it those imports); the others build or train as little as they can.
"""

import json
import os
import subprocess
import sys

import pytest

from scfa_jax.models import backbone_metadata
from scfa_jax.training import workdir_config
from tests.test_main import ROOT
from tests.test_main import run_main
from tests.conftest import host_devices

DEMO = '--config=configs/demo.py'
# The tiny run of tests/conftest.py, as flags (used with --config.data.data_dir=<tiny_data_dir>).
TINY = ('--config.data.builder_config=tiny', '--config.data.grid_rows=2', '--config.data.grid_cols=2',
        '--config.data.tile_size=8', '--config.model.depth=10', '--config.model.width=4',
        '--config.train.batch_size=8', '--config.eval.batch_size=8', '--config.eval.after_training=False')


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


@pytest.mark.slow(seconds=12)
def test_missing_manual_folder(tmp_path):
  proc = run_main(DEMO, f'--workdir={tmp_path / "run"}', '--config.data.name=hmdb51',
                  '--config.data.builder_config=split1', f'--config.data.data_dir={tmp_path / "tfds"}')
  _assert_user_error(proc, 1, 'hmdb51 is built from files you download by hand', '--config.data.manual_dir')

  proc = run_main(DEMO, f'--workdir={tmp_path / "run"}', '--config.data.name=hmdb51',
                  '--config.data.builder_config=split1', f'--config.data.data_dir={tmp_path / "tfds"}',
                  f'--config.data.manual_dir={tmp_path}')
  _assert_user_error(proc, 1, f'{tmp_path}: ', 'hmdb51_org')


@pytest.mark.slow
def test_too_many_unreadable_clips(tmp_path):
  for name in ('jump/a.avi', 'jump/b.avi', 'wave/c.avi', 'wave/d.avi'):
    (tmp_path / 'videos' / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / 'videos' / name).write_bytes(b'not a video')
  proc = run_main(DEMO, f'--workdir={tmp_path / "run"}', '--config.data.name=video_folder',
                  f'--config.data.data_dir={tmp_path / "tfds"}', f'--config.data.manual_dir={tmp_path / "videos"}',
                  timeout=300)
  _assert_user_error(proc, 1, 'could not be decoded', 'wave/d.avi: OpenCV cannot open it', 'config.data.max_bad_fraction')


@pytest.mark.slow(seconds=9)
def test_unknown_split_is_refused_before_training(tmp_path, tiny_data_dir):
  workdir = tmp_path / 'run'
  proc = run_main(DEMO, f'--workdir={workdir}', f'--config.data.data_dir={tiny_data_dir}', *TINY,
                  '--config.data.test_split=validation')
  _assert_user_error(proc, 2, "config.data.test_split='validation' is not allowed", 'test, train')
  assert not (workdir / 'checkpoints').exists()


@pytest.mark.slow(seconds=20)
def test_a_changed_config_is_refused_unless_allowed(tmp_path, tiny_data_dir):
  workdir = tmp_path / 'run'
  common = (DEMO, f'--workdir={workdir}', f'--config.data.data_dir={tiny_data_dir}', *TINY,
            '--config.train.max_steps=1')
  proc = run_main(*common, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(workdir / workdir_config.CONFIG_FILE) as f:
    assert json.load(f)['optim']['learning_rate'] == 1e-3

  # Evaluation and run-control settings may change; the learning rate and the seed may not.
  changed = ('--config.optim.learning_rate=0.01', '--config.seed=3', '--config.eval.knn_k=1',
             '--config.ckpt.every_steps=7')
  proc = run_main_before_imports(*common, *changed)
  _assert_user_error(proc, 2, f'{workdir}/config.json records different training settings (2 field(s) differ)',
                     'config.optim.learning_rate: 0.001 in the workdir, 0.01 now', 'config.seed: 0 in the workdir, 3 now',
                     '--allow_config_change')
  assert 'knn_k' not in proc.stderr.split(': error: ')[1] and 'every_steps' not in proc.stderr.split(': error: ')[1]

  proc = run_main(*common, *changed, '--allow_config_change', timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'config.optim.learning_rate: 0.001 in the workdir, 0.01 now' in proc.stderr  # logged
  with open(workdir / workdir_config.CHANGES_FILE) as f:
    (record,) = json.load(f)
  assert [c['key'] for c in record['changes']] == ['optim.learning_rate', 'seed'] and record['time']
