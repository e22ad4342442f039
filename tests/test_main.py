"""The command line: bad config overrides fail fast with exit code 2."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(*args: str, timeout: int = 120, **env_vars: str) -> subprocess.CompletedProcess:
  """``python -m scfa_jax.main *args`` on the CPU, from the repository root (``env_vars`` added to the environment)."""
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), JAX_PLATFORMS='cpu',
             **env_vars)
  return subprocess.run([sys.executable, '-m', 'scfa_jax.main', *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout)


@pytest.mark.parametrize('override,expected', [
    ('--config.train.num_epoch=3', 'num_epoch'),  # typo of num_epochs
    ('--config.nonexistent.key=1', 'nonexistent'),
    ('--config.train.num_epochs=three', 'num_epochs'),  # wrong type
])
def test_bad_override_exits_2_before_training(tmp_path, override, expected):
  workdir = tmp_path / 'run'
  proc = run_main('--config=configs/demo.py', f'--workdir={workdir}', override)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert expected in proc.stderr
  assert not workdir.exists()  # nothing was trained or written


def test_missing_config_file_exits_2(tmp_path):
  proc = run_main('--config=configs/does_not_exist.py', f'--workdir={tmp_path}')
  assert proc.returncode == 2
  assert 'does_not_exist.py' in proc.stderr


@pytest.mark.slow
def test_override_reaches_the_run(tmp_path, tiny_data_dir):
  """A valid override is applied: a 1-step tiny run through the real entry point."""
  workdir = tmp_path / 'run'
  proc = run_main('--config=configs/demo.py', f'--workdir={workdir}', '--config.data.builder_config=tiny',
                   f'--config.data.data_dir={tiny_data_dir}', '--config.data.tile_size=8', '--config.model.depth=10',
                   '--config.model.width=4', '--config.train.batch_size=8', '--config.train.max_steps=1',
                   '--config.eval.after_training=False', timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (workdir / 'checkpoints' / '1').is_dir()
