"""End-to-end training runs on the tiny synthetic dataset: learning, resuming, results."""

import glob
import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from scfa_jax.training import checkpointing
from scfa_jax.training import train


def _events(workdir: str, tag: str) -> list[tuple[int, float]]:
  """(step, value) of every TensorBoard scalar ``tag`` written in ``workdir``, in step order."""
  events = event_accumulator.EventAccumulator(workdir, size_guidance={event_accumulator.TENSORS: 0})
  events.Reload()
  return sorted((e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag))


def _scalars(workdir: str, tag: str) -> list[float]:
  return [value for _, value in _events(workdir, tag)]


@pytest.mark.slow(seconds=13)
def test_training_lowers_the_loss_and_writes_results(tiny_config, tmp_path):
  tiny_config.train.num_epochs = 12  # 36 steps of 8 videos
  workdir = str(tmp_path / 'run')
  results = train.train_and_evaluate(tiny_config, workdir)
  losses = _scalars(workdir, 'train/loss')
  assert len(losses) == 36
  assert np.mean(losses[-6:]) < np.mean(losses[:6]) - 0.2, losses
  with open(os.path.join(workdir, 'results.json')) as f:
    written = json.load(f)
  assert written == results
  for key in ('linear_probe_top1', 'knn_top1', 'num_classes', 'num_test', 'chance'):
    assert key in written
  assert written['num_classes'] == 6 and written['num_test'] == 12 and written['num_train'] == 24
  assert 0.0 <= written['linear_probe_top1'] <= 1.0 and 0.0 <= written['knn_top1'] <= 1.0


@pytest.mark.slow(seconds=9)
def test_resume_continues_exactly_where_it_stopped(tiny_config, tmp_path):
  """A run stopped at step 4 and resumed to 6 ends with the parameters of an uninterrupted 6-step run."""
  tiny_config.eval.after_training = False  # 2 epochs = 6 steps
  straight = str(tmp_path / 'straight')
  train.train_and_evaluate(tiny_config, straight)

  resumed = str(tmp_path / 'resumed')
  tiny_config.train.max_steps = 4  # interrupted in the middle of epoch 2
  train.train_and_evaluate(tiny_config, resumed)
  tiny_config.train.max_steps = -1
  train.train_and_evaluate(tiny_config, resumed)
  # The second run trained only steps 5 and 6: every step was logged exactly once.
  assert [step for step, _ in _events(resumed, 'train/loss')] == [1, 2, 3, 4, 5, 6]
  kept = sorted(int(os.path.basename(p)) for p in glob.glob(os.path.join(resumed, 'checkpoints', '*'))
                if os.path.basename(p).isdigit())
  assert kept == [4, 6]  # saved every 2 steps, max_to_keep=2

  def final_params(workdir):
    manager = checkpointing.create_manager(workdir, tiny_config.ckpt)
    return manager.restore(6, args=ocp.args.StandardRestore())['params']

  for a, b in zip(jax.tree.leaves(final_params(straight)), jax.tree.leaves(final_params(resumed))):
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.slow(seconds=10)
def test_cross_entropy_baseline_trains(tiny_config, tmp_path):
  tiny_config.loss.name = 'cross_entropy'
  tiny_config.train.max_steps = 2
  results = train.train_and_evaluate(tiny_config, str(tmp_path / 'ce'))
  assert 'classifier_top1' in results
