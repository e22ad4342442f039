"""The TSN baseline: every tile is a frame encoded alone, per-frame outputs averaged, time order unseen."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from flax import traverse_util

from configs import demo
from configs import demo_tsn
from scfa_jax import config_validation
from scfa_jax.data import grid
from scfa_jax.data import input_pipeline
from scfa_jax.evaluation import compute
from scfa_jax.models import scfa
from tests.conftest import make_tiny_config


def _tiny_model_config():
  config = make_tiny_config('/unused')
  config.model.per_frame = True
  return config


def test_grid_to_frames_inverts_the_pipeline_tiling():
  frames = np.random.default_rng(0).normal(size=(3, 8, 5, 7, 3)).astype(np.float32)  # 3 videos x 8 frames
  grids = grid.frames_to_grid(tf.constant(frames), 2, 4).numpy()
  assert grids.shape == (3, 10, 28, 3)
  np.testing.assert_array_equal(np.asarray(scfa.grid_to_frames(jnp.asarray(grids), 2, 4)), frames.reshape(24, 5, 7, 3))


@pytest.fixture(scope='module')
def tsn_and_frames():
  config = _tiny_model_config()
  model = scfa.create_model(config.model, num_classes=3, frame_grid=(2, 2))
  frame_model = scfa.create_model(config.model, num_classes=3)  # the same parameters, one frame per image
  frames = jax.random.normal(jax.random.key(1), (4, 4, 16, 16, 3))  # 4 videos x 4 frames
  grids = grid.frames_to_grid(tf.constant(np.asarray(frames)), 2, 2).numpy()
  variables = model.init(jax.random.key(0), jnp.asarray(grids[:1]), train=False)
  return model, frame_model, variables, frames, grids


@pytest.mark.slow
def test_features_and_scores_are_means_of_the_per_frame_ones(tsn_and_frames):
  model, frame_model, variables, frames, grids = tsn_and_frames
  video = model.apply(variables, jnp.asarray(grids), train=False)
  per_frame = frame_model.apply(variables, frames.reshape((16, 16, 16, 3)), train=False)
  np.testing.assert_allclose(video['features'], per_frame['features'].reshape(4, 4, -1).mean(1), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(video['logits'], per_frame['logits'].reshape(4, 4, -1).mean(1), rtol=1e-5, atol=1e-6)
  assert video['projection'].shape == (4, 8)
  np.testing.assert_allclose(np.linalg.norm(video['projection'], axis=-1), 1.0, rtol=1e-5)


def test_time_order_is_not_seen(tsn_and_frames):
  """Reversing the frames changes an SCFA grid but not TSN's output: the consensus is order-free."""
  model, _, variables, frames, _ = tsn_and_frames
  forward = grid.frames_to_grid(tf.constant(np.asarray(frames)), 2, 2).numpy()
  backward = grid.frames_to_grid(tf.constant(np.asarray(frames)[:, ::-1]), 2, 2).numpy()
  a, b = (model.apply(variables, jnp.asarray(g), train=False) for g in (forward, backward))
  np.testing.assert_allclose(a['logits'], b['logits'], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(a['features'], b['features'], rtol=1e-5, atol=1e-6)


def test_per_frame_is_ignored_without_a_frame_grid_and_off_by_default():
  assert scfa.frame_grid_of(make_tiny_config('/unused')) is None
  config = _tiny_model_config()
  config.data.update(grid_rows=2, grid_cols=4)
  assert scfa.frame_grid_of(config) == (2, 4)
  assert scfa.create_model(config.model, frame_grid=None).frame_grid is None


def test_demo_tsn_changes_only_what_it_names_and_costs_about_a_demo_grid():
  base, tsn = (traverse_util.flatten_dict(c.get_config().to_dict(), sep='.') for c in (demo, demo_tsn))
  assert {k: v for k, v in tsn.items() if base[k] != v} == {
      'loss.name': 'cross_entropy', 'model.per_frame': True, 'data.grid_rows': 2,
      'data.tile_size': 32}
  costs = {}
  for name, module in (('grid', demo), ('tsn', demo_tsn)):
    config = module.get_config()
    model = scfa.create_model(config.model, num_classes=6, frame_grid=scfa.frame_grid_of(config))
    shape = input_pipeline.GridSpec.from_config(config.data).image_shape
    variables = jax.eval_shape(lambda m=model, s=shape: m.init(jax.random.key(0), jnp.zeros((1,) + s), train=False))
    costs[name] = compute.forward_flops(model.apply, variables, shape)
  assert tsn['data.grid_rows'] * tsn['data.grid_cols'] == 8  # K=8 segments, as TSN's default
  # 8 frames of 32 px against one 96 px grid: 8,192 vs 9,216 pixels; the per-frame heads add a little.
  assert 0.75 < costs['tsn'] / costs['grid'] < 1.1, costs


def test_tsn_with_local_views_is_refused():
  config = make_tiny_config('/unused')
  config.model.per_frame = True
  config.data.num_local_views = 1
  found = config_validation.problems(config, device_count=1)
  assert any('per_frame' in p and 'num_local_views' in p for p in found), found
