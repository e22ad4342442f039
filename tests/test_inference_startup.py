"""A quick start for the short commands: no Keras or scikit-learn at start-up, compiled programs kept on disk;
and ``python -m scfa_jax.bench --help``."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START = """
import json, sys
from scfa_jax.inference import cli
cli.start()
from scfa_jax.inference import Predictor, export, index, predictor, video, views
from scfa_jax import notebook
predictor._preprocessing(notebook.load_config('demo'))  # a workdir without saved heads
import jax
heavy = ('keras', 'sklearn', 'matplotlib', 'scfa_jax.training.train')
print(json.dumps({'heavy': sorted(m for m in heavy if m in sys.modules),
                  'cache': jax.config.jax_compilation_cache_dir}))
"""


def _env(**extra):
  env = {k: v for k, v in os.environ.items() if not k.startswith(('JAX_COMPILATION_CACHE', 'JAX_PERSISTENT_CACHE'))}
  env.update(PYTHONPATH=ROOT, **extra)
  return env


@pytest.mark.slow(seconds=10)
def test_commands_start_without_keras_or_sklearn_and_keep_compiled_programs(tmp_path):
  done = subprocess.run([sys.executable, '-c', START], env=_env(XDG_CACHE_HOME=str(tmp_path)), capture_output=True,
                        text=True, check=True, cwd=ROOT)
  out = json.loads(done.stdout.strip().splitlines()[-1])
  assert out == {'heavy': [], 'cache': str(tmp_path / 'scfa_jax' / 'jax')}
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  assert tf.keras.layers.Dense  # in process: Keras still imports when asked for


@pytest.mark.slow(seconds=10)
def test_bench_help_lists_every_benchmarks_flags_and_exits_0():
  done = subprocess.run([sys.executable, '-m', 'scfa_jax.bench', '--help'], env=_env(), capture_output=True,
                        text=True, check=False, cwd=ROOT)
  assert done.returncode == 0, done.stderr
  for flag in ('--predict_videos_dir', '--predict_models', '--clips', '--depth'):
    assert flag in done.stdout
  assert 'cpu_feature_guard' not in done.stderr + done.stdout and 'absl::InitializeLog' not in done.stderr
