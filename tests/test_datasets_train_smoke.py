"""A real-layout dataset trains through the command line: `python -m scfa_jax.main` builds HMDB51 on first use."""

import json
import os
import subprocess
import sys

import pytest

from tests import video_fixtures as vf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow(seconds=23)
def test_main_builds_hmdb51_from_rar_archives_and_trains(tmp_path):
  templates = vf.VideoTemplates(tmp_path / 'templates', vf.HMDB51_LENGTHS)
  expected = vf.make_hmdb51(tmp_path / 'manual', templates, layout='rar')[1]
  workdir = tmp_path / 'run'
  overrides = {
      'data.name': 'hmdb51', 'data.builder_config': 'split1', 'data.manual_dir': tmp_path / 'manual',
      'data.data_dir': tmp_path / 'tfds', 'data.grid_rows': 2, 'data.grid_cols': 2, 'data.tile_size': 8,
      'data.shuffle_buffer': 64, 'model.depth': 10, 'model.width': 4, 'model.proj_hidden_dim': 16,
      'model.proj_dim': 8, 'train.batch_size': 8, 'train.max_steps': 2, 'train.log_every_steps': 1,
      'eval.batch_size': 8, 'eval.knn_k': 3, 'eval.plots': False,  # figures: tests/test_evaluation_run.py
  }
  command = [sys.executable, '-m', 'scfa_jax.main', '--config=configs/demo.py', f'--workdir={workdir}']
  command += [f'--config.{key}={value}' for key, value in overrides.items()]
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
  proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  with open(workdir / 'results.json') as f:
    results = json.load(f)
  assert results['dataset'] == 'hmdb51/split1/1.0.0'
  assert results['step'] == 2
  assert results['num_classes'] == 51
  num_train = sum(e.split == 'train' for e in expected.values())
  assert (results['num_train'], results['num_test']) == (num_train, len(expected) - num_train)
  assert (tmp_path / 'tfds' / 'hmdb51' / 'split1' / '1.0.0' / 'dataset_info.json').is_file()
