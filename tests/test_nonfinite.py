"""Non-finite steps: never saved into a checkpoint; skipped and counted with train.skip_nonfinite_steps."""

import functools

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from scfa_jax.models import scfa
from scfa_jax.training import checkpointing
from scfa_jax.training import loop
from scfa_jax.training import parallel
from scfa_jax.training import steps
from scfa_jax.training import initial_state
from scfa_jax.training import train
from tests.test_train import _events

BAD_STEP = 4  # a checkpoint step (every 2) between two log steps (every 3)


@pytest.fixture
def poisoned(monkeypatch):
  """Feeds float views to the step, NaN at step BAD_STEP (counted from the first batch of the run)."""
  original = parallel.prefetch_to_device

  def prefetch(batches, size, **kwargs):
    def views_as_float():
      for i, batch in enumerate(batches, start=1):
        views = batch['views'].astype(np.float32)
        yield dict(batch, views=np.full_like(views, np.nan) if i == BAD_STEP else views)
    return original(views_as_float(), size, **kwargs)

  monkeypatch.setattr(parallel, 'prefetch_to_device', prefetch)


def _config(tiny_config):
  tiny_config.train.update(num_epochs=2, log_every_steps=3)  # 6 steps: logs at 3 and 6, checkpoints at 2, 4, 6
  tiny_config.ckpt.max_to_keep = 5
  tiny_config.eval.after_training = False
  return tiny_config


def _saved(workdir, config, step):
  manager = checkpointing.create_manager(workdir, config.ckpt)
  try:
    return manager.all_steps(), manager.restore(step, args=ocp.args.StandardRestore())
  finally:
    manager.close()


def _all_finite(tree) -> bool:
  return all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(tree))


@pytest.mark.slow
def test_nan_between_log_steps_stops_before_the_checkpoint(tiny_config, tmp_path, poisoned):
  config = _config(tiny_config)
  workdir = str(tmp_path / 'run')
  with pytest.raises(loop.NonFiniteError) as error:
    train.train_and_evaluate(config, workdir)
  message = str(error.value)
  assert f'at step {BAD_STEP}' in message and 'skip_nonfinite_steps' in message and '\n' not in message
  kept, state = _saved(workdir, config, 2)
  assert list(kept) == [2]  # step 4 (NaN) was never written; before, it was saved and caught at step 6
  assert _all_finite(state)


@pytest.mark.slow
def test_skipping_keeps_training_and_counts(tiny_config, tmp_path, poisoned):
  config = _config(tiny_config)
  config.train.skip_nonfinite_steps = True
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config, workdir)
  kept, state = _saved(workdir, config, 6)
  assert list(kept) == [2, 4, 6]
  assert _all_finite(state) and int(state['step']) == 6
  assert _events(workdir, 'train/skipped_steps') == [(3, 0.0), (6, 1.0)]
  assert all(np.isfinite(v) for _, v in _events(workdir, 'train/loss'))  # means over the applied steps only


@pytest.mark.slow
def test_train_step_skips_a_nonfinite_update_on_device(tiny_config):
  """One device, no pmap: a NaN batch leaves parameters, BatchNorm and Adam state unchanged; step advances."""
  model = scfa.create_model(tiny_config.model, num_classes=0, axis_name=None)
  tx = optax.adam(1e-2)
  shape = (16, 16, 3)
  state = initial_state.create_train_state(jax.random.key(0), model, shape, tx, tiny_config.model)
  step = jax.jit(functools.partial(steps.train_step, loss_config=tiny_config.loss, preprocessing_mode='imagenet',
                                   learning_rate_fn=lambda s: 1e-2, axis_name=None, skip_nonfinite=True))
  rng = np.random.default_rng(0)
  batch = {'views': rng.uniform(0, 255, (4, 2) + shape).astype(np.float32), 'label': np.array([0, 0, 1, 1])}

  nan_batch = dict(batch, views=np.full_like(batch['views'], np.nan))
  skipped, metrics = step(state, nan_batch)
  assert float(metrics['skipped']) == 1.0 and not np.isfinite(float(metrics['loss']))
  assert int(skipped.step) == int(state.step) + 1
  for name in ('params', 'batch_stats', 'opt_state'):
    for a, b in zip(jax.tree.leaves(getattr(skipped, name)), jax.tree.leaves(getattr(state, name))):
      np.testing.assert_array_equal(a, b)

  applied, metrics = step(state, batch)
  assert float(metrics['skipped']) == 0.0
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(applied.params), jax.tree.leaves(state.params)))
