"""The console: the run's own lines only, one per log step; --verbosity=1 / SCFA_VERBOSE=1 bring the rest back."""

import logging
import os
import re
import subprocess
import sys

import pytest

from scfa_jax import console
from scfa_jax.data import pretext
from scfa_jax.training import startup
from tests.conftest import make_tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIVE_LINE = re.compile(r'^[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\]', re.M)


@pytest.mark.parametrize('line,dropped', [
    (b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR', True),
    (b'I0000 00:00:1795371941.784931   18879 cudart_stub.cc:31] Could not find cuda drivers on your machine', True),
    (b'E0000 00:00:1795371943.287935   18879 cuda_platform.cc:52] failed call to cuInit: INTERNAL', True),
    (b'To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow', True),
    (b'F1122 18:26:27.098303 1402 pjrt_client.cc:72] Check failed: out of memory', False),  # fatal: always shown
    (b'Traceback (most recent call last):', False),
])
def test_native_filter_drops_cpp_log_lines_only(line, dropped):
  assert bool(console._NATIVE_NOISE.match(line)) == dropped


@pytest.mark.parametrize('path,level,kept', [
    ('/site/scfa_jax/training/loop.py', logging.INFO, True),
    ('/site/jax/_src/xla_bridge.py', logging.INFO, False),  # "Unable to initialize backend 'tpu'"
    ('/site/tensorflow_datasets/core/features/feature.py', logging.WARNING, False),  # TensorInfo.dtype deprecated
    ('/site/tensorflow/python/util/deprecation.py', logging.WARNING, False),
    ('/site/orbax/checkpoint/manager.py', logging.WARNING, True),
    ('/site/tensorflow/python/data/ops.py', logging.ERROR, True),
])
def test_quiet_filter_keeps_the_runs_lines_and_real_warnings(path, level, kept):
  record = logging.LogRecord('x', level, path, 1, 'message', None, None)
  assert console._LibraryFilter().filter(record) == kept


def test_command_line_summary_names_file_and_overrides():
  assert startup.command_line('configs/demo.py', {'train.num_epochs': 1}) == (
      'config configs/demo.py, overrides: train.num_epochs=1')
  assert startup.command_line(None, {}) == 'config (built in Python), no overrides'


@pytest.mark.parametrize('data,pretext_on,phrase', [
    ({}, False, ' (2 views each)'),
    ({'num_global_views': 4}, False, ' (4 views each)'),
    ({'num_global_views': 1}, False, ''),
    ({'num_global_views': 1}, True, ' (1 view + 1 pretext view each)'),
    ({'num_global_views': 1, 'num_local_views': 1, 'local_grid': 2}, False, ' (1 global + 1 local view each)'),
    ({'num_global_views': 1, 'num_local_views': 1, 'local_grid': 2, 'fuse_local_views': True}, False,
     ' (1 sample each); every sample fuses 2 images (1 global grid + 1 local)'),
    ({'num_global_views': 3}, True, ' (3 views + 1 pretext view each)'),
    ({'num_local_views': 2, 'local_grid': 2}, False, ' (2 global + 2 local views each)'),
    ({'num_global_views': 3, 'num_local_views': 1, 'local_grid': 2, 'fuse_local_views': True}, True,
     ' (3 samples + 1 pretext sample each); every sample fuses 2 images (1 global grid + 1 local)'),
])
def test_the_batch_line_says_what_a_step_encodes_of_each_video(data, pretext_on, phrase):
  config = make_tiny_config('unused')
  config.data.update(data)
  spec = pretext.Spec(arrow_of_time=True) if pretext_on else None
  assert startup.views_phrase(config.data, spec) == phrase


def _run(tiny_data_dir, workdir, **env):
  args = ['--config=configs/demo.py', f'--workdir={workdir}', '--config.data.builder_config=tiny',
          f'--config.data.data_dir={tiny_data_dir}', '--config.data.tile_size=8', '--config.data.grid_rows=2',
          '--config.data.grid_cols=2', '--config.model.depth=10', '--config.model.width=4',
          '--config.train.batch_size=8', '--config.train.log_every_steps=1', '--config.train.max_steps=3',
          '--config.eval.after_training=False']
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), JAX_PLATFORMS='cpu', **env)
  proc = subprocess.run([sys.executable, '-m', 'scfa_jax.main', *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout + proc.stderr


@pytest.mark.slow(seconds=17)
def test_quiet_console_of_a_run(tmp_path):
  """A first run: the dataset is built too, which TFDS announces with a "Downloading and preparing" banner."""
  output = _run(tmp_path / 'tfds', tmp_path / 'run', SCFA_VERBOSE='')
  lines = output.splitlines()
  assert 'Downloading' not in output and 'downloaded and prepared' not in output, output
  assert f'Preparing dataset synthetic_motion/tiny/1.1.0 in {tmp_path / "tfds"}' in output, output
  for step in (1, 2, 3):  # exactly one line per log step (no second copy from a metric writer)
    assert sum(f'step {step}/3 ' in line for line in lines) == 1, output
  assert not NATIVE_LINE.search(output), output  # no TF/XLA C++ lines
  assert 'absl::InitializeLog' not in output and 'deprecat' not in output.lower() and 'cuInit' not in output
  assert 'overrides: data.builder_config=' in output
  assert 'dataset synthetic_motion/tiny/1.1.0: 6 classes, 24 train, 12 test videos' in output
  assert 'batch: 8 videos global, 8 per device' in output
  assert 'stopping at step 3 (train.max_steps)' in output
  assert f'tensorboard --logdir {tmp_path / "run"}' in output
  assert all(re.match(r'\d\d:\d\d:\d\d ', line) for line in lines), output  # nothing but the run's lines


@pytest.mark.slow(seconds=12)
def test_verbose_console_brings_library_output_back(tiny_data_dir, tmp_path):
  output = _run(tiny_data_dir, tmp_path / 'run', SCFA_VERBOSE='1')
  assert re.search(r'^I\d{4} [\d:.]+ +\d+ \S+\.py:\d+\] step 1/3 ', output, re.M), output  # absl's line format
  assert re.search(r'(orbax|checkpoint)', output)  # library INFO lines are back
