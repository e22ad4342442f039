"""A real-layout dataset trains as `python -m scfa_jax.main` runs it: the run builds HMDB51 on first use."""

import json

import pytest

from tests import video_fixtures as vf
from tests.conftest import config_file


@pytest.mark.slow(seconds=10)
def test_main_builds_hmdb51_from_rar_archives_and_trains(tmp_path):
  templates = vf.VideoTemplates(tmp_path / 'templates', vf.HMDB51_LENGTHS)
  expected = vf.make_hmdb51(tmp_path / 'manual', templates, layout='rar')[1]
  workdir = tmp_path / 'run'
  overrides = {
      'data.name': 'hmdb51', 'data.builder_config': 'split1', 'data.manual_dir': str(tmp_path / 'manual'),
      'data.data_dir': str(tmp_path / 'tfds'), 'data.grid_rows': 2, 'data.grid_cols': 2, 'data.tile_size': 8,
      'data.shuffle_buffer': 64, 'model.depth': 10, 'model.width': 4, 'model.proj_hidden_dim': 16,
      'model.proj_dim': 8, 'train.batch_size': 8, 'train.max_steps': 2, 'train.log_every_steps': 1,
      'eval.batch_size': 8, 'eval.knn_k': 3, 'eval.plots': False,  # figures: tests/test_evaluation_run.py
  }
  from scfa_jax.training import train  # pylint: disable=g-import-not-at-top  # what main runs
  train.train_and_evaluate(config_file('demo', overrides), str(workdir))
  with open(workdir / 'results.json') as f:
    results = json.load(f)
  assert results['dataset'] == 'hmdb51/split1/1.0.0'
  assert results['step'] == 2
  assert results['num_classes'] == 51
  num_train = sum(e.split == 'train' for e in expected.values())
  assert (results['num_train'], results['num_test']) == (num_train, len(expected) - num_train)
  assert (tmp_path / 'tfds' / 'hmdb51' / 'split1' / '1.0.0' / 'dataset_info.json').is_file()
