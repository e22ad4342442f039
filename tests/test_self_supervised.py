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
import tensorflow as tf

from scfa_jax import config as base_config
from scfa_jax import config_validation
from scfa_jax import errors
from scfa_jax import losses
from scfa_jax.data import layout
from scfa_jax.data import pretext
from scfa_jax.data import sampling
from scfa_jax.data import views
from scfa_jax.inference import workdir as inference_workdir
from scfa_jax.training import memory_queue
from scfa_jax.training import momentum
from scfa_jax.training import steps
from tests import resume_runs

NUM_VIDEOS, NUM_VIEWS, PROJ_DIM, QUEUE = 3, 3, 8, 5


def instance_reference(z, video_of_row, queue_z, temperature, keys=None):
  """L = mean_i -1/|P(i)| sum_{p in P(i)} log(exp(z_i.k_p/t) / sum_{a != i} exp(z_i.k_a/t)),

  P(i) = the other views of row i's video; a runs over every other row and every queued projection;
  k = the keys (the momentum encoder's projections), or z itself without a key encoder.
  """
  k = z if keys is None else keys
  rows = list(range(len(z)))
  per_anchor = []
  for i in rows:
    others = [k[a] for a in rows if a != i] + list(queue_z)
    denominator = sum(np.exp(np.dot(z[i], o) / temperature) for o in others)
    positives = [p for p in rows if p != i and video_of_row[p] == video_of_row[i]]
    per_anchor.append(-np.mean([np.log(np.exp(np.dot(z[i], k[p]) / temperature) / denominator) for p in positives]))
  return np.mean(per_anchor)


class TinyEncoder(nn.Module):
  """A stand-in for SCFA that compiles in a blink: pooled 4x4 patches -> Dense -> unit projection."""

  shuffle_head: bool = False  # a 'shuffle' pretext head, as scfa.SCFAModel's pretext_heads

  @nn.compact
  def __call__(self, x, train=False):
    features = nn.avg_pool(x, (4, 4), strides=(4, 4)).reshape((x.shape[0], -1))
    features = nn.BatchNorm(use_running_average=not train)(features)
    projection = nn.Dense(PROJ_DIM)(features)
    out = {'features': features, 'projection': projection / jnp.linalg.norm(projection, axis=-1, keepdims=True)}
    if self.shuffle_head:
      out['pretext_logits'] = {'shuffle': nn.Dense(2)(features)}
    return out


def tiny_state(schedule, image_shape=(16, 16, 3), shuffle_head=False) -> steps.TrainState:
  model = TinyEncoder(shuffle_head)
  variables = model.init(jax.random.key(0), jnp.zeros((1,) + image_shape))
  return steps.TrainState.create(apply_fn=model.apply, params=variables['params'], tx=optax.adam(schedule),
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


def test_momentum_schedule_and_update_match_the_formulas():
  cosine = momentum.schedule(0.99, 'cosine', total_steps=10)
  for step in (0, 3, 10, 12):
    expected = 1 - (1 - 0.99) * (1 + np.cos(np.pi * min(step / 10, 1))) / 2
    np.testing.assert_allclose(float(cosine(step)), expected, rtol=1e-6)
  assert float(momentum.schedule(0.9, 'constant', 10)(7)) == pytest.approx(0.9)
  ema, new = {'w': np.array([1.0, 2.0])}, {'w': np.array([3.0, -2.0])}
  np.testing.assert_allclose(momentum.update(ema, new, 0.75)['w'], [0.75 * 1 + 0.25 * 3, 0.75 * 2 - 0.25 * 2])


def test_keys_come_from_the_momentum_encoder_which_follows_the_update(setup):
  """Queries from the online encoder, keys (contrasts and queue) from the EMA copy, which then moves by m."""
  config, state, views, _ = setup
  base, total = 0.9, 4
  schedule = optax.constant_schedule(1e-3)
  step = jax.jit(functools.partial(steps.train_step, loss_config=config.loss, preprocessing_mode='unit',
                                   learning_rate_fn=schedule, axis_name=None,
                                   momentum_fn=momentum.schedule(base, 'cosine', total)))
  # A key encoder that differs from the online one, one step into training.
  ema = jax.tree.map(lambda x: x + 0.1 * np.cos(np.arange(x.size).reshape(x.shape)), state.params)
  state = state.replace(momentum_params=ema, step=1)
  new_state, metrics = step(state, {'views': views})

  images, _ = steps.stack_views(jnp.asarray(views, jnp.float32) / 255.0, jnp.zeros((NUM_VIDEOS,)), video_major=True)
  apply = jax.jit(functools.partial(state.apply_fn, train=True, mutable=['batch_stats']))
  z = np.asarray(apply({'params': state.params, 'batch_stats': state.batch_stats}, images)[0]['projection'], np.float64)
  k = np.asarray(apply({'params': ema, 'batch_stats': state.batch_stats}, images)[0]['projection'], np.float64)
  video_of_row = np.repeat(np.arange(NUM_VIDEOS), NUM_VIEWS)
  queue_z = np.asarray(state.queue['projections'], np.float64)[:QUEUE - 1]
  expected = instance_reference(z, video_of_row, queue_z, config.loss.temperature, keys=k)
  np.testing.assert_allclose(float(metrics['loss']), expected, rtol=1e-5)

  m = 1 - (1 - base) * (1 + np.cos(np.pi * 1 / total)) / 2  # the schedule at the step the update was made
  np.testing.assert_allclose(float(metrics['momentum']), m, rtol=1e-6)
  for old, new, moved in zip(jax.tree.leaves(ema), jax.tree.leaves(new_state.params),
                             jax.tree.leaves(new_state.momentum_params)):
    np.testing.assert_allclose(moved, m * np.asarray(old) + (1 - m) * np.asarray(new), rtol=1e-5, atol=1e-7)
  # The queue holds the keys (video-major rows to view-major), not the queries.
  queued = np.asarray(new_state.queue['projections'])  # the newest QUEUE of the 9 keys
  view_major = k.reshape(NUM_VIDEOS, NUM_VIEWS, -1).swapaxes(0, 1).reshape(NUM_VIDEOS * NUM_VIEWS, -1)[:QUEUE]
  np.testing.assert_allclose(queued, view_major, rtol=1e-5, atol=1e-6)


@pytest.mark.slow(seconds=15)
def test_a_self_supervised_run_resumes_exactly_and_evaluation_uses_the_online_encoder(tiny_config, tmp_path):
  """Instance contrast + key encoder + queue + the three pretext tasks: stopped at step 4 and resumed = straight."""
  tiny_config.loss.update(positives='video', queue_size=24)
  tiny_config.loss.pretext.update(arrow_of_time=0.5, speed=0.5, shuffle=1.0)
  tiny_config.model.momentum = 0.9
  a, b = resume_runs.straight_and_resumed(tiny_config, tmp_path)
  assert set(a['params']) >= {'pretext_arrow_of_time', 'pretext_speed', 'pretext_shuffle'}
  for part in ('params', 'momentum_params', 'queue', 'opt_state'):
    for x, y in zip(jax.tree.leaves(a[part]), jax.tree.leaves(b[part])):
      np.testing.assert_allclose(x, y, atol=1e-6)
  # The key encoder trails the online one; evaluation and inference restore the online (query) encoder.
  assert max(np.abs(x - y).max() for x, y in zip(jax.tree.leaves(a['params']), jax.tree.leaves(a['momentum_params']))) > 1e-4
  restored = inference_workdir.restore_encoder(str(tmp_path / 'resumed'), tiny_config)
  for x, y in zip(jax.tree.leaves(restored.variables['params']), jax.tree.leaves(b['params'])):
    np.testing.assert_array_equal(x, y)


def _solid_video(num_frames: int) -> tf.Tensor:
  """Frame i is a 4x4 image of grey level i: a tile says which frame it shows."""
  return tf.cast(tf.range(num_frames)[:, None, None, None] * tf.ones((1, 4, 4, 3), tf.int32), tf.uint8)


def _tile_frames(grid: tf.Tensor, spec: layout.GridSpec) -> list[int]:
  tiles = tf.reshape(grid, (spec.rows, spec.tile_size, spec.cols, spec.tile_size, 3))
  return [int(x) for x in tf.reshape(tf.transpose(tiles, (0, 2, 1, 3, 4))[..., 0, 0, 0], [-1])]


def test_a_reversed_view_shows_the_clean_views_tiles_in_reverse_order():
  spec, video = layout.GridSpec(2, 3, 4), _solid_video(30)
  clean = sampling.segment_indices(30, spec.num_frames, tf.constant([1, 2], tf.int64))
  grids = views.make_views(video, tf.stack([clean, pretext.reverse(clean)]), spec)
  assert _tile_frames(grids[1], spec) == _tile_frames(grids[0], spec)[::-1]
  assert _tile_frames(grids[0], spec) == sorted(_tile_frames(grids[0], spec))


@pytest.mark.parametrize('num_frames,fitting', [(100, 3), (40, 2), (20, 1)])
def test_a_speed_class_k_view_samples_frames_k_apart(num_frames, fitting):
  spec = pretext.Spec(speed_classes=3)
  seen = set()
  for s in range(40):
    indices, labels = pretext.sample(num_frames, 16, spec, tf.constant([s, 7], tf.int64))
    stride = int(labels['speed']) + 1
    np.testing.assert_array_equal(np.diff(indices.numpy()), stride)  # frames `stride` apart, inside the video
    assert 0 <= int(indices[0]) and int(indices[-1]) < num_frames
    seen.add(stride)
  assert seen == set(range(1, fitting + 1))  # every stride the video is long enough for, and only those


def test_a_shuffled_view_is_a_permutation_and_carries_no_arrow_of_time():
  spec = pretext.Spec(arrow_of_time=True, shuffle=True)
  labels_seen = set()
  for s in range(30):
    indices, labels = pretext.sample(60, 16, spec, tf.constant([s, 3], tf.int64))
    clean, _ = pretext.sample(60, 16, pretext.Spec(arrow_of_time=True), tf.constant([s, 3], tf.int64))
    indices, clean = indices.numpy(), clean.numpy()
    assert sorted(indices) == sorted(clean)  # the same frames
    ordered = np.all(np.diff(indices) > 0) or np.all(np.diff(indices) < 0)
    assert int(labels['shuffle']) == (not ordered)
    assert int(labels['arrow_of_time']) == (pretext.NO_LABEL if not ordered else int(np.diff(indices)[0] < 0))
    labels_seen.add((int(labels['shuffle']), int(labels['arrow_of_time'])))
  assert labels_seen == {(0, 0), (0, 1), (1, pretext.NO_LABEL)}


@pytest.mark.parametrize('share', [0.0, 0.25, 1.0])
def test_backwards_share_is_the_share_of_views_played_backwards(share):
  spec = pretext.Spec(arrow_of_time=True, backwards_share=share)
  arrows = []
  seeds = tf.data.Dataset.range(200).map(lambda s: tf.stack([s, tf.constant(5, tf.int64)]))
  for indices, labels in seeds.map(lambda seed: pretext.sample(60, 16, spec, seed)).as_numpy_iterator():
    arrows.append(int(labels['arrow_of_time']))
    assert arrows[-1] == int(np.all(np.diff(indices) < 0))  # the label says how it was played
  assert abs(np.mean(arrows) - share) < 0.08


def test_the_pretext_loss_matches_a_cross_entropy_transcription():
  rng = np.random.default_rng(3)
  logits = {'arrow_of_time': rng.normal(size=(5, 2)), 'speed': rng.normal(size=(5, 3))}
  labels = {'arrow_of_time': np.array([0, 1, pretext.NO_LABEL, 1, 0]), 'speed': np.array([2, 0, 1, 1, 0])}
  weights = {'arrow_of_time': 0.5, 'speed': 2.0, 'shuffle': 1.0}

  def ce(x, y):
    keep = y >= 0
    log_p = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    return -log_p[keep, y[keep]].mean()

  expected = 0.5 * ce(logits['arrow_of_time'], labels['arrow_of_time']) + 2.0 * ce(logits['speed'], labels['speed'])
  loss, aux = losses.pretext_loss(jax.tree.map(jnp.asarray, logits), jax.tree.map(jnp.asarray, labels), weights)
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  assert float(aux['pretext_speed_accuracy']) == pytest.approx(np.mean(logits['speed'].argmax(1) == labels['speed']))


def _projections_and_shuffle_logits(state, views):
  """The step's rows recomputed: projections [videos, views, d] and the last views' shuffle logits, float64."""
  images, _ = steps.stack_views(jnp.asarray(views, jnp.float32) / 255.0, jnp.zeros((NUM_VIDEOS,)), video_major=True)
  outputs, _ = jax.jit(functools.partial(state.apply_fn, train=True, mutable=['batch_stats']))(
      {'params': state.params, 'batch_stats': state.batch_stats}, images)
  z = np.asarray(outputs['projection'], np.float64).reshape(NUM_VIDEOS, NUM_VIEWS, -1)
  logits = np.asarray(outputs['pretext_logits']['shuffle'], np.float64).reshape(NUM_VIDEOS, NUM_VIEWS, 2)[:, -1]
  return z, logits


def test_the_step_adds_the_pretext_term_of_each_videos_last_view():
  """Views 0..V-2 are contrasted (instance), the last view of every video feeds only the pretext head."""
  config = base_config.get_config()
  config.loss.update(positives='video', temperature=0.2, base_temperature=0.2)
  config.loss.pretext.shuffle = 0.7
  schedule = optax.constant_schedule(1e-3)
  state = tiny_state(schedule, shuffle_head=True)
  views = np.random.default_rng(1).integers(0, 256, size=(NUM_VIDEOS, NUM_VIEWS, 16, 16, 3), dtype=np.uint8)
  shuffled = np.array([0, 1, 1], np.int32)
  step = jax.jit(functools.partial(steps.train_step, loss_config=config.loss, preprocessing_mode='unit',
                                   learning_rate_fn=schedule, axis_name=None))
  _, metrics = step(state, {'views': views, 'pretext': {'shuffle': shuffled}})

  z, logits = _projections_and_shuffle_logits(state, views)
  contrast = instance_reference(z[:, :-1].reshape(-1, PROJ_DIM), np.repeat(np.arange(NUM_VIDEOS), NUM_VIEWS - 1),
                                [], config.loss.temperature)
  log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  cross_entropy = -log_p[np.arange(NUM_VIDEOS), shuffled].mean()
  np.testing.assert_allclose(float(metrics['loss']), contrast + 0.7 * cross_entropy, rtol=1e-5)
  assert 'pretext_shuffle_accuracy' in metrics


@pytest.mark.parametrize('overrides,message', [
    ({'model.momentum': 1.0}, 'config.model.momentum=1.0 is not allowed: expected in [0.0, 1.0).'),
    ({'model.momentum': -0.1}, 'config.model.momentum=-0.1 is not allowed: expected in [0.0, 1.0).'),
    ({'loss.positives': 'instance'}, "config.loss.positives='instance' is not allowed: expected one of 'label', 'video'."),
    ({'loss.pretext.shuffle': 1.0, 'data.grid_rows': 1, 'data.grid_cols': 1},
     'config.loss.pretext.shuffle > 0 predicts how frames are ordered, but a 1x1 grid shows one frame'),
    ({'loss.pretext.speed': 1.0, 'loss.pretext.speed_classes': 1},
     'config.loss.pretext.speed_classes=1 is not allowed: expected >= 2.'),
    ({'loss.positives': 'video', 'loss.name': 'cross_entropy'}, "config.loss.positives='video' (instance contrast)"),
    ({'model.momentum': 0.99, 'loss.name': 'cross_entropy'}, 'config.model.momentum=0.99 gives contrastive keys'),
])
def test_bad_self_supervised_settings_are_refused_in_one_line(overrides, message):
  config = base_config.get_config()
  config.data.name = 'synthetic_motion'
  for field, value in overrides.items():
    section, _, key = field.rpartition('.')
    functools.reduce(getattr, section.split('.'), config)[key] = value
  with pytest.raises(errors.ConfigError) as error:
    config_validation.validate(config, device_count=1)
  assert str(error.value).startswith(message) and '\n' not in str(error.value)


@pytest.mark.parametrize('image_shape', [(16, 16, 3), (2, 16, 16, 3)], ids=['grids', 'fused'])
def test_reversed_pretext_grids_are_negatives_of_every_view(image_shape):
  """loss.pretext.reversed_negatives: a backwards grid (arrow label 1) joins every anchor's denominator.

  Fused samples ([pathways, H, W, 3] a view): the backwards sample is one negative, as a grid is.
  """
  config = base_config.get_config()
  config.loss.update(positives='video', temperature=0.2, base_temperature=0.2)
  config.loss.pretext.update(shuffle=0.7, reversed_negatives=True)
  schedule = optax.constant_schedule(1e-3)
  state = tiny_state(schedule, image_shape, shuffle_head=True)
  views = np.random.default_rng(2).integers(0, 256, size=(NUM_VIDEOS, NUM_VIEWS) + image_shape, dtype=np.uint8)
  pretext_labels = {'shuffle': np.array([0, 0, 1], np.int32), 'arrow_of_time': np.array([1, 0, pretext.NO_LABEL])}
  step = jax.jit(functools.partial(steps.train_step, loss_config=config.loss, preprocessing_mode='unit',
                                   learning_rate_fn=schedule, axis_name=None))
  _, metrics = step(state, {'views': views, 'pretext': pretext_labels})

  z, logits = _projections_and_shuffle_logits(state, views)
  contrast = instance_reference(z[:, :-1].reshape(-1, PROJ_DIM), np.repeat(np.arange(NUM_VIDEOS), NUM_VIEWS - 1),
                                z[:1, -1], config.loss.temperature)  # only video 0's grid was played backwards
  log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  cross_entropy = -log_p[np.arange(NUM_VIDEOS), pretext_labels['shuffle']].mean()
  np.testing.assert_allclose(float(metrics['loss']), contrast + 0.7 * cross_entropy, rtol=1e-5)
