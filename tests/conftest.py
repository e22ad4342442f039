"""Shared fixtures: a tiny prepared synthetic_motion dataset and a tiny training config."""

import os

import jax
import pytest

from scfa_jax import config as base_config

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '..', 'shared')


@pytest.fixture(scope='session', autouse=True)
def compilation_cache(tmp_path_factory):
  """Reuses XLA executables across the many short runs in one test session."""
  jax.config.update('jax_compilation_cache_dir', str(tmp_path_factory.mktemp('jax_cache')))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory) -> str:
  """A TFDS data_dir holding synthetic_motion/tiny (6 classes, 24 train + 12 test clips)."""
  from scfa_jax.datasets.synthetic_motion import synthetic_motion  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  synthetic_motion.SyntheticMotion(config='tiny', data_dir=data_dir).download_and_prepare()
  return data_dir


def make_tiny_config(data_dir: str):
  """A run that compiles and trains in seconds: ResNet-10 at width 4 on 2x2 grids of 8 px tiles."""
  config = base_config.get_config()
  config.data.update(name='synthetic_motion', builder_config='tiny', data_dir=data_dir, grid_rows=2, grid_cols=2,
                     tile_size=8, shuffle_buffer=64, preprocessing='imagenet')
  config.model.update(depth=10, width=4, proj_hidden_dim=16, proj_dim=8)
  config.optim.update(learning_rate=3e-3, warmup_epochs=0.5)
  config.train.update(batch_size=8, num_epochs=2, log_every_steps=1)
  config.ckpt.update(every_steps=2, max_to_keep=2)
  config.eval.update(batch_size=8, knn_k=3)
  return config


@pytest.fixture
def tiny_config(tiny_data_dir):
  return make_tiny_config(tiny_data_dir)


@pytest.fixture(scope='session')
def evaluated_workdir(tiny_data_dir, tmp_path_factory):
  """(config, workdir, results) of one tiny run, trained once per session for evaluation and inference tests.

  6 SupCon steps, every protocol with 2 test views, a 3-step fine-tune, figures, and the saved heads.
  test_evaluation_run.py's last test evaluates it again with another fine-tune (results.json and heads
  then describe that one); other users read results.json from disk rather than the returned dict.
  """
  from scfa_jax.training import train  # pylint: disable=g-import-not-at-top
  config = make_tiny_config(tiny_data_dir)
  config.eval.update(num_test_clips=2, finetune_epochs=1, finetune_learning_rate=1e-3)
  workdir = str(tmp_path_factory.mktemp('evaluation') / 'run')
  results = train.train_and_evaluate(config, workdir)
  return config, workdir, results
