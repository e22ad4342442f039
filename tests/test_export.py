"""Exported serving graphs: the SavedModel for every platform, ONNX (onnxruntime) against JAX, and the stem pool."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scfa_jax import config as base_config
from scfa_jax import errors
from scfa_jax.bench import predict as bench_predict
from scfa_jax.inference import export
from scfa_jax.models import resnet

SHAPE = (16, 16, 3)  # a 2x2 grid of 8 px tiles


def _predictor(fused):
  config = base_config.get_config()
  config.data.update(name='ucf101_manual', grid_rows=2, grid_cols=2, tile_size=8)
  config.model.update(depth=10, width=4, proj_hidden_dim=16, proj_dim=8)
  if fused:
    config.data.update(num_local_views=1, local_grid=1, fuse_local_views=True)
  return bench_predict.random_predictor(config)


@functools.lru_cache(maxsize=None)
def _model(fused):
  """(predictor, images of batches 1 and 17, the exported JAX graph's outputs of them), made once per module."""
  predictor = _predictor(fused)
  fn, variables, _ = export.export_fn(predictor, 'probe')
  rng = np.random.default_rng(0)
  images = [rng.integers(0, 256, (b,) + SHAPE, np.uint8) for b in (1, 17)]
  run = jax.jit(fn)
  return predictor, images, [jax.tree.map(np.asarray, run(variables, x)) for x in images]


def test_stem_pool_is_the_padded_max_pool():
  """Checkpoints and ported weights stay valid: the same values and gradients as Linen's padded pool."""
  x = jax.random.normal(jax.random.key(0), (2, 9, 10, 3)) - 3.0  # all negative: padding must never win
  padded = lambda v: nn.max_pool(v, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))  # pylint: disable=unnecessary-lambda-assignment
  np.testing.assert_array_equal(resnet.stem_pool(x), padded(x))
  weights = jax.random.normal(jax.random.key(1), padded(x).shape)
  grad = lambda f: jax.grad(lambda v: jnp.sum(f(v) * weights))(x)  # pylint: disable=unnecessary-lambda-assignment
  np.testing.assert_array_equal(grad(resnet.stem_pool), grad(padded))


@pytest.mark.slow(seconds=30)
def test_saved_model_runs_on_every_platform_and_matches_jax(tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  predictor, images, expected = _model(False)
  meta = export.save_saved_model(predictor, str(tmp_path), 'probe')
  assert meta['platforms'] == ['cpu', 'cuda', 'tpu']
  proto = saved_model_pb2.SavedModel.FromString((tmp_path / 'saved_model.pb').read_bytes())
  calls = [node for graph in proto.meta_graphs for f in graph.graph_def.library.function for node in f.node_def
           if node.op == 'XlaCallModule']
  assert calls and all(list(c.attr['platforms'].list.s) == [b'CPU', b'CUDA', b'TPU'] for c in calls)
  serve = tf.saved_model.load(str(tmp_path)).signatures['serving_default']
  for x, want in zip(images, expected):  # a batch of 1 and of 17 through the free batch dimension, on CPU
    got = serve(images=tf.constant(x))
    for key in ('embedding', 'probabilities'):
      np.testing.assert_allclose(got[key].numpy(), want[key], atol=1e-4)
  empty = serve(images=tf.zeros((0,) + SHAPE, tf.uint8))
  assert empty['embedding'].shape == (0, 32) and empty['probabilities'].shape == (0, 5)
  with pytest.raises(errors.ConfigError, match='--platforms=cpu,gpu'):
    export.save_saved_model(predictor, str(tmp_path / 'x'), 'probe', platforms=['cpu', 'gpu'])


@pytest.mark.slow(seconds=20)
@pytest.mark.parametrize('fused', [False, True], ids=['plain', 'fused'])
def test_onnx_model_matches_jax_in_onnxruntime(fused, tmp_path):
  pytest.importorskip('jax2onnx')
  from scfa_jax.inference import export_onnx  # pylint: disable=g-import-not-at-top
  predictor, images, expected = _model(fused)
  meta = export_onnx.save_onnx(predictor, str(tmp_path), 'probe')
  assert meta['format'] == 'onnx' and meta['outputs']['probabilities'] == ['batch', 5]
  session = export_onnx.session(str(tmp_path / export_onnx.MODEL_FILE))
  assert session.get_inputs()[0].shape == ['batch', *SHAPE]  # one model for every batch size
  for x, want in zip(images, expected):
    got = dict(zip(export_onnx.OUTPUTS, session.run(list(export_onnx.OUTPUTS), {'images': x})))
    for key in export_onnx.OUTPUTS:
      np.testing.assert_allclose(got[key], want[key], atol=1e-4)


def test_onnx_without_its_extra_names_the_install(monkeypatch):
  from scfa_jax.inference import export_onnx  # pylint: disable=g-import-not-at-top
  monkeypatch.setitem(__import__('sys').modules, 'jax2onnx', None)
  with pytest.raises(errors.MissingDependencyError, match=r'pip install -e "\.\[onnx\]"') as caught:
    export_onnx.load_converter()
  assert '\n' not in str(caught.value)
