"""Self-supervised SCFA: instance contrast (``loss.positives='video'``) never reads a label.

The train step's loss is checked against a float64 transcription of the
multi-view instance-contrast loss (SupCon with "same video" as the positive
relation, the memory queue as negatives only).
"""

import functools

import jax
import jax.numpy as jnp
import flax.linen as nn
import numpy as np
import optax
import pytest

from scfa_jax import config as base_config
from scfa_jax.training import memory_queue
from scfa_jax.training import steps

NUM_VIDEOS, NUM_VIEWS, PROJ_DIM, QUEUE = 3, 3, 8, 5


def instance_reference(z, video_of_row, queue_z, temperature):
  """L = mean_i -1/|P(i)| sum_{p in P(i)} log(exp(z_i.z_p/t) / sum_{a != i} exp(z_i.z_a/t)),

  P(i) = the other views of row i's video; a runs over every other row and every queued projection.
  """
  rows = list(range(len(z)))
  per_anchor = []
  for i in rows:
    others = [z[a] for a in rows if a != i] + list(queue_z)
    denominator = sum(np.exp(np.dot(z[i], o) / temperature) for o in others)
    positives = [p for p in rows if p != i and video_of_row[p] == video_of_row[i]]
    per_anchor.append(-np.mean([np.log(np.exp(np.dot(z[i], z[p]) / temperature) / denominator) for p in positives]))
  return np.mean(per_anchor)


class TinyEncoder(nn.Module):
  """A stand-in for SCFA that compiles in a blink: pooled 4x4 patches -> Dense -> unit projection."""

  @nn.compact
  def __call__(self, x, train=False):
    features = nn.avg_pool(x, (4, 4), strides=(4, 4)).reshape((x.shape[0], -1))
    features = nn.BatchNorm(use_running_average=not train)(features)
    projection = nn.Dense(PROJ_DIM)(features)
    return {'features': features, 'projection': projection / jnp.linalg.norm(projection, axis=-1, keepdims=True)}


def tiny_state(schedule, image_shape=(16, 16, 3)) -> steps.TrainState:
  variables = TinyEncoder().init(jax.random.key(0), jnp.zeros((1,) + image_shape))
  return steps.TrainState.create(apply_fn=TinyEncoder().apply, params=variables['params'], tx=optax.adam(schedule),
                                 batch_stats=variables['batch_stats'])


@pytest.fixture(scope='module')
def setup():
  config = base_config.get_config()
  config.loss.update(positives='video', temperature=0.2, base_temperature=0.2)
  schedule = optax.constant_schedule(1e-3)
  state = tiny_state(schedule)
  queue = memory_queue.init(QUEUE, PROJ_DIM)
  rng = np.random.default_rng(0)
  queued = rng.normal(size=(QUEUE - 1, PROJ_DIM)).astype(np.float32)
  queue = memory_queue.enqueue(queue, queued / np.linalg.norm(queued, axis=1, keepdims=True),
                               np.full((QUEUE - 1,), memory_queue.NEGATIVE))
  state = state.replace(queue=queue)
  views = rng.integers(0, 256, size=(NUM_VIDEOS, NUM_VIEWS, 16, 16, 3), dtype=np.uint8)
  step = jax.jit(functools.partial(steps.train_step, loss_config=config.loss, preprocessing_mode='unit',
                                   learning_rate_fn=schedule, axis_name=None))
  return config, state, views, step


def test_instance_loss_matches_the_float64_transcription(setup):
  config, state, views, step = setup
  _, metrics = step(state, {'views': views, 'label': np.zeros((NUM_VIDEOS,), np.int32)})
  images, _ = steps.stack_views(jnp.asarray(views, jnp.float32) / 255.0, jnp.zeros((NUM_VIDEOS,)), video_major=True)
  outputs, _ = jax.jit(functools.partial(state.apply_fn, train=True, mutable=['batch_stats']))(
      {'params': state.params, 'batch_stats': state.batch_stats}, images)
  z = np.asarray(outputs['projection'], np.float64)
  video_of_row = np.repeat(np.arange(NUM_VIDEOS), NUM_VIEWS)  # video-major rows (the jit layout)
  queue_z = np.asarray(state.queue['projections'], np.float64)[:QUEUE - 1]  # the empty slot is no contrast
  expected = instance_reference(z, video_of_row, queue_z, config.loss.temperature)
  np.testing.assert_allclose(float(metrics['loss']), expected, rtol=1e-5)


def test_labels_are_never_read(setup):
  """Constant, garbage or no labels: the same loss, gradient and update; the queue gets negatives only."""
  _, state, views, step = setup
  results = [step(state, {'views': views, 'label': labels}) for labels in
             (np.zeros((NUM_VIDEOS,), np.int32), np.array([7, -3, 123456], np.int32))]
  results.append(step(state, {'views': views}))
  (first_state, first), others = results[0], results[1:]
  for new_state, metrics in others:
    assert float(metrics['loss']) == float(first['loss'])
    assert float(metrics['grad_norm']) == float(first['grad_norm'])
    for a, b in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(first_state.params)):
      np.testing.assert_array_equal(a, b)
  queue = first_state.queue
  assert np.asarray(queue['valid']).all()
  assert (np.asarray(queue['labels']) == memory_queue.NEGATIVE).all()
