"""Fused multi-scale samples (data.fuse_local_views): layout, the fused feature, SupCon on it, resume, bf16, checks."""

import ast
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

from scfa_jax import config_validation
from scfa_jax import datasets
from scfa_jax.data import input_pipeline
from scfa_jax.data import preprocessing
from scfa_jax.data import pretext
from scfa_jax.evaluation import gallery
from scfa_jax.models import scfa
from scfa_jax.training import loop
from scfa_jax.training import steps
from scfa_jax.training import initial_state
from scfa_jax.training import train
from tests.conftest import make_tiny_config
from tests.test_losses import supcon_reference
from tests.test_multiscale_views import _data_config, _levelled_video, _tile_levels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- samples


def test_a_training_sample_is_a_global_grid_and_its_own_local_views():
  config = _data_config(local_grid=2, local_frames_stride=1, fuse_local_views=True)
  example, seed = _levelled_video(40), tf.constant([5, 0], tf.int64)
  plain = input_pipeline.preprocess_train(example, seed, data_config=_data_config(local_grid=2), num_views=2)
  out = input_pipeline.preprocess_train(example, seed, data_config=config, num_views=2, num_local_views=1)
  samples = out['views'].numpy()
  assert samples.shape == (2, 2, 16, 16, 3)  # [samplings, pathways (global, local), H, W, 3]
  np.testing.assert_array_equal(samples[:, 0], plain['views'].numpy())  # the global grids are the unfused ones
  starts = []
  for s in (0, 1):
    levels = np.round(_tile_levels(samples[s, 1], 8) / 5)
    np.testing.assert_allclose(np.diff(levels), 1, atol=0.5)  # the local pathway: 4 consecutive frames
    starts.append(levels[0])
  assert starts[0] != starts[1]  # the two samplings draw their local runs independently


def test_evaluation_samples_fuse_each_clip_with_its_own_local_run():
  config = _data_config(local_grid=2, local_frames_stride=1, fuse_local_views=True)
  unfused = _data_config(local_grid=2)
  example = _levelled_video(40)
  one = input_pipeline.preprocess_eval(example, data_config=config)['image'].numpy()
  assert one.shape == (2, 16, 16, 3)
  np.testing.assert_array_equal(one[0], input_pipeline.preprocess_eval(example, data_config=unfused)['image'])
  assert 40 / 2 - 4 <= np.round(_tile_levels(one[1], 8) / 5)[0] <= 40 / 2  # K = 1: the centred run
  two = input_pipeline.preprocess_eval(example, data_config=config, num_clips=2)['image'].numpy()
  assert two.shape == (2, 2, 16, 16, 3)
  np.testing.assert_array_equal(two[:, 0], input_pipeline.preprocess_eval(example, data_config=unfused,
                                                                          num_clips=2)['image'])
  firsts = [np.round(_tile_levels(two[k, 1], 8) / 5)[0] for k in (0, 1)]
  assert firsts[0] < 40 / 2 < firsts[1]  # clip k's run starts (k + 0.5) / 2 of the way through
  with pytest.raises(ValueError, match='eval.local_views'):
    input_pipeline.preprocess_eval(example, data_config=config, num_local_views=1)


@pytest.mark.parametrize('spec,order', [
    (pretext.Spec(arrow_of_time=True, backwards_share=1.0), 'backwards'),
    (pretext.Spec(arrow_of_time=True, backwards_share=0.0), 'forwards'),
    (pretext.Spec(speed_classes=2), 'speed'),
    (pretext.Spec(shuffle=True), 'shuffle'),
])
def test_a_fused_pretext_sample_plays_its_local_view_as_its_grid(spec, order):
  """The pretext view of a fused sample transforms every pathway, so its labels hold for the whole sample."""
  config = _data_config(local_grid=2, local_frames_stride=2, fuse_local_views=True)
  example = _levelled_video(50)  # levels up to 245: room for speed class 2 (31 frames)
  plain = input_pipeline.preprocess_train(example, tf.constant([5, 0], tf.int64), data_config=config,
                                          num_views=2, num_local_views=1)['views'].numpy()
  seen = set()
  for s in range(8):
    out = input_pipeline.preprocess_train(example, tf.constant([5, s], tf.int64), data_config=config, num_views=2,
                                          num_local_views=1, pretext_spec=spec)
    samples = out['views'].numpy()
    assert samples.shape == (3, 2, 16, 16, 3)  # two contrastive samples, then the pretext sample
    assert input_pipeline.images_per_video(config, spec) == 6  # what the console's grids/s counts
    if s == 0:  # the pretext sample comes after the others and leaves them as they were
      np.testing.assert_array_equal(samples[:2], plain)
    grid = np.round(_tile_levels(samples[2, 0], 4) / 5)
    local = np.round(_tile_levels(samples[2, 1], 8) / 5)
    if order == 'speed':
      k = int(out['pretext']['speed']) + 1
      np.testing.assert_array_equal(np.diff(grid), k)
      np.testing.assert_array_equal(np.diff(local), 2 * k)  # local_frames_stride x the speed class
      seen.add(k)
    elif order == 'shuffle':
      shuffled = int(out['pretext']['shuffle'])
      for frames in (grid, local):
        assert shuffled == (not (np.all(np.diff(frames) > 0))), frames
      assert np.all(np.diff(np.sort(local)) == 2)  # the same run of frames, in another order
      seen.add(shuffled)
    else:
      sign = -1 if order == 'backwards' else 1
      assert int(out['pretext']['arrow_of_time']) == (order == 'backwards')
      assert np.all(np.sign(np.diff(grid)) == sign)
      np.testing.assert_array_equal(np.diff(local), 2 * sign)
  if order in ('speed', 'shuffle'):
    assert len(seen) == 2, seen  # both classes drawn


@pytest.fixture(scope='module')
def tiny_builder(tiny_data_dir):
  return datasets.get_builder(make_tiny_config(tiny_data_dir).data)


@pytest.mark.slow(seconds=10)
def test_fused_batches_resume_exactly_and_fine_tuning_keeps_the_pathways(tiny_builder, tiny_data_dir):
  config = make_tiny_config(tiny_data_dir)
  config.data.update(num_local_views=1, local_grid=1, fuse_local_views=True)
  make = lambda start, **kw: input_pipeline.create_train_dataset(  # noqa
      tiny_builder, config.data, local_batch_size=8, seed=0, start_step=start, **kw)
  full = [b for b, _ in zip(make(0).as_numpy_iterator(), range(3))]
  resumed = next(make(2).as_numpy_iterator())
  assert full[0]['views'].shape == (8, 2, 2, 16, 16, 3)
  np.testing.assert_array_equal(full[2]['views'], resumed['views'])
  np.testing.assert_array_equal(full[2]['label'], resumed['label'])
  assert next(make(0, num_views=1).as_numpy_iterator())['views'].shape == (8, 1, 2, 16, 16, 3)
  assert gallery.read_grids(tiny_builder, 'test', config.data, [1])[1].shape == (16, 16, 3)  # the global grid


# ----------------------------------------------------------------------------- the model


def _model_config(**overrides):
  config = make_tiny_config('')
  config.model.update(overrides)
  return config.model


def _per_pathway_features(variables, x, model_config, *, separate: bool) -> list:
  """Each pathway of ``x`` [N, P, ...] through the encoder alone, as an ordinary grid model would encode it."""
  grid_model = scfa.create_model(model_config)
  per_pathway = []
  for p in range(x.shape[1]):
    take = (lambda c, p=p: c[f'pathway{p}']) if separate else (lambda c: c)  # separate: ResNet p's own variables
    encoder = {'params': {'encoder': take(variables['params']['encoder'])},
               'batch_stats': {'encoder': take(variables['batch_stats']['encoder'])}}
    _, features = grid_model.bind(encoder).encoder(x[:, p])
    per_pathway.append(np.asarray(features))
  return per_pathway


@pytest.mark.slow(seconds=30)  # compiles the attention-fused model twice (30 s on the 2-core AVX2 machine)
@pytest.mark.parametrize('separate', [False, True])
def test_the_fused_feature_is_the_documented_fusion_of_pathways_encoded_one_by_one(separate):
  x = jax.random.uniform(jax.random.key(1), (3, 2, 16, 16, 3))
  attention = scfa.create_model(_model_config(fusion='attention', separate_pathways=separate), num_pathways=2)
  variables = attention.init(jax.random.key(0), x)
  per_pathway = _per_pathway_features(variables, x, _model_config(), separate=separate)
  concat = scfa.create_model(_model_config(fusion='concat', separate_pathways=separate), num_pathways=2)
  same_encoder = concat.init(jax.random.key(2), x)  # its own projection head (twice as wide), attention's encoder
  same_encoder = {'params': {**same_encoder['params'], 'encoder': variables['params']['encoder']},
                  'batch_stats': variables['batch_stats']}
  np.testing.assert_allclose(concat.apply(same_encoder, x)['features'], np.concatenate(per_pathway, axis=1),
                             rtol=1e-5, atol=1e-6)
  # model.local_feature_weight scales the local view's half of the concatenation only.
  weighted = scfa.create_model(_model_config(fusion='concat', separate_pathways=separate, local_feature_weight=0.5),
                               num_pathways=2)
  np.testing.assert_allclose(weighted.apply(same_encoder, x)['features'],
                             np.concatenate([per_pathway[0], 0.5 * per_pathway[1]], axis=1), rtol=1e-5, atol=1e-6)
  if separate:
    return
  # Attention: softmax over pathways of w . f_p + b_p, then the weighted sum of the f_p. The per-pathway bias is
  # zero at initialisation, so set it (and a score kernel large enough to matter) before comparing.
  params = variables['params']['fusion']
  bias = np.array([0.9, -1.4], np.float32)
  kernel = np.asarray(params['fusion_score']['kernel']) * 5.0
  variables = {**variables, 'params': {**variables['params'],
                                       'fusion': {'fusion_score': {'kernel': kernel}, 'fusion_bias': bias}}}
  scores = np.stack([f @ kernel[:, 0] for f in per_pathway], 1)
  weights = np.exp(scores + bias)
  weights /= weights.sum(axis=1, keepdims=True)
  assert np.ptp(weights[:, 0]) > 0.01 or abs(weights[0, 0] - 0.5) > 0.1  # the bias and the scores both matter
  expected = sum(weights[:, p:p + 1] * per_pathway[p] for p in range(2))
  np.testing.assert_allclose(attention.apply(variables, x)['features'], expected, rtol=1e-5, atol=1e-6)
  # The bias is learned: the features' gradient with respect to it is not zero (nor equal for both pathways,
  # which would cancel in the softmax).
  def features_sum(fusion_bias):
    fused = {**variables, 'params': {**variables['params'], 'fusion': {**variables['params']['fusion'],
                                                                       'fusion_bias': fusion_bias}}}
    return (attention.apply(fused, x)['features'] * np.arange(1, per_pathway[0].shape[1] + 1)).sum()
  gradient = np.asarray(jax.grad(features_sum)(jnp.asarray(bias)))
  assert np.all(np.abs(gradient) > 1e-4) and abs(gradient.sum()) < 1e-3 * np.abs(gradient).max(), gradient


@pytest.mark.parametrize('heads', [(0, 1), (0,), (1,)])
def test_pathway_heads_project_each_pathway_feature_on_its_own(heads):
  x = jax.random.uniform(jax.random.key(1), (3, 2, 16, 16, 3))
  model = scfa.create_model(_model_config(), num_pathways=2, pathway_heads=heads)
  variables = model.init(jax.random.key(0), x)
  assert {n for n in variables['params'] if n.startswith('pathway')} == {f'pathway_projection{p}' for p in heads}
  per_pathway = _per_pathway_features(variables, x, _model_config(), separate=False)
  projections = np.asarray(model.apply(variables, x)['pathway_projections'])
  assert projections.shape == (3, len(heads), 8)
  for i, p in enumerate(heads):
    head = variables['params'][f'pathway_projection{p}']
    h = np.maximum(per_pathway[p] @ head['dense1']['kernel'] + head['dense1']['bias'], 0)
    z = h @ head['dense2']['kernel'] + head['dense2']['bias']
    np.testing.assert_allclose(projections[:, i], z / np.linalg.norm(z, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
  assert 'pathway_projections' not in scfa.create_model(_model_config(), num_pathways=2).apply(
      {k: {n: v for n, v in c.items() if not n.startswith('pathway')} for k, c in variables.items()}, x)


def _fused_state(dtype: str = 'float32', pathway_aux_weight: float = 0.0, local_aux_weight=None,
                 positives: str = 'label'):
  model_config = _model_config(dtype=dtype)
  config = make_tiny_config('')
  config.loss.update(pathway_aux_weight=pathway_aux_weight, local_aux_weight=local_aux_weight, positives=positives)
  config.data.update(num_local_views=1, local_grid=1, fuse_local_views=True)
  model = scfa.create_model(model_config, num_pathways=2, pathway_heads=scfa.pathway_heads_of(config))
  schedule = loop.learning_rate_schedule(config.optim, steps_per_epoch=1, total_steps=10)
  state = initial_state.create_train_state(jax.random.key(0), model, (2, 16, 16, 3),
                                   loop.create_optimizer(config.optim, schedule), model_config)
  step = jax.jit(functools.partial(steps.train_step, loss_config=config.loss, preprocessing_mode='imagenet',
                                   learning_rate_fn=schedule, axis_name=None))
  return state, step


def _fused_batch(num_videos: int = 6):
  rng = np.random.default_rng(0)
  return {'views': rng.integers(0, 256, size=(num_videos, 2, 2, 16, 16, 3), dtype=np.uint8),
          'label': np.array([0, 1, 2, 0, 1, 2][:num_videos], np.int32)}


@pytest.mark.parametrize('pathway_aux_weight,local_aux_weight,positives', [
    pytest.param(0.0, None, 'label', marks=pytest.mark.slow(seconds=24)),  # compiles the fused step (24 s, AVX2)
    pytest.param(0.5, None, 'label', marks=pytest.mark.slow(seconds=5)),  # every pathway's term, weight 0.5
    pytest.param(0.5, 0.0, 'label', marks=pytest.mark.slow(seconds=5)),  # the global grid's term only
    pytest.param(0.0, 0.25, 'label', marks=pytest.mark.slow(seconds=5)),  # the local view's term only
    # configs/demo_ssl_fused.py: instance contrast, fused and on the grid alone (its own positives: the same video)
    pytest.param(1.0, 0.0, 'video', marks=pytest.mark.slow(seconds=5)),
])
def test_supcon_contrasts_the_two_fused_samplings_as_the_formula_says(pathway_aux_weight, local_aux_weight,
                                                                     positives):
  state, step = _fused_state(pathway_aux_weight=pathway_aux_weight, local_aux_weight=local_aux_weight,
                             positives=positives)
  batch = _fused_batch()
  _, metrics = step(state, batch)
  # The transcription: one fused projection per sampling of each video, stacked sampling-major; the two
  # samplings of a video (and every same-class sampling) are the positives.
  images = preprocessing.normalize(jnp.swapaxes(jnp.asarray(batch['views']), 0, 1).reshape((12, 2, 16, 16, 3)),
                                   'imagenet')
  outputs, _ = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats}, images, train=True,
                              mutable=['batch_stats'])
  z = np.asarray(outputs['projection'], np.float64)
  assert z.shape == (12, 8)  # 2 samplings x 6 videos, one embedding each: pathways are not views
  labels = np.tile(batch['label'] if positives == 'label' else np.arange(6), 2)  # instance: a video is its class
  expected = supcon_reference(z, labels, temperature=0.07)
  # + each weighted pathway's own SupCon term over the same two samplings (a head only where the weight is > 0)
  weights = {0: pathway_aux_weight, 1: pathway_aux_weight if local_aux_weight is None else local_aux_weight}
  weighted = [p for p in (0, 1) if weights[p] > 0]
  if weighted:
    per_head = np.asarray(outputs['pathway_projections'], np.float64)
    assert per_head.shape[1] == len(weighted)
    expected += sum(weights[p] * supcon_reference(per_head[:, i], labels, temperature=0.07)
                    for i, p in enumerate(weighted))
  else:
    assert 'pathway_projections' not in outputs
  assert float(metrics['loss']) == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow(seconds=21)
def test_a_bfloat16_fused_run_trains_with_float32_state():
  state, step = _fused_state('bfloat16')
  batch = _fused_batch()
  losses = []
  for _ in range(3):
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
  assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
  assert {leaf.dtype for leaf in jax.tree.leaves(state.params)} == {jnp.dtype(jnp.float32)}
  outputs = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats},
                           jnp.asarray(batch['views'][:, 0], jnp.float32), train=False)
  assert outputs['features'].dtype == jnp.float32 and outputs['features'].shape == (6, 2 * 32)


# ----------------------------------------------------------------------------- runs and checks


@pytest.mark.slow(seconds=20)  # 17 s measured before the page check was added; its share not measured apart
def test_a_fused_run_trains_evaluates_and_fine_tunes_on_fused_samples(tiny_config, tmp_path):
  tiny_config.data.update(num_local_views=1, local_grid=1, fuse_local_views=True)
  tiny_config.loss.update(pathway_aux_weight=0.5, local_aux_weight=0.0)  # the global grid's head: restored, then dropped
  tiny_config.model.local_feature_weight = 0.5  # evaluation and inference must see the same weighted feature
  # A pretext sample a video, played forwards or backwards: the arrow head (kept in the checkpoint, dropped by
  # fine-tuning), and the backwards ones as hard negatives; nothing after training reads either.
  tiny_config.loss.pretext.update(arrow_of_time=0.5, reversed_negatives=True)
  tiny_config.train.max_steps = 2
  tiny_config.eval.update(num_test_clips=1, retrieval_ks=(1,), plots=False, finetune_epochs=1)
  results = train.train_and_evaluate(tiny_config, str(tmp_path / 'run'))
  assert 0.0 <= results['linear_probe_top1'] <= 1.0 and results['finetune_top1'] is not None
  cost = results['compute']
  assert cost['images_per_video'] == {'single_view': 2, 'averaged': 2}  # a grid + a local view per clip
  assert cost['forward_gflops_per_video']['single_view'] == pytest.approx(2 * cost['forward_gflops_per_image'],
                                                                          rel=1e-3)
  assert results['settings']['fused_pathways'] == 2
  # The inference API builds and embeds the same fused samples: evaluation's class for every test video.
  from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
  from tests.test_inference import PROTOCOL, _split  # pylint: disable=g-import-not-at-top
  predictor = Predictor.from_workdir(str(tmp_path / 'run'), storage_round_trip=False)
  videos, labels, _ = _split(tiny_config, 'test')
  names = predictor.class_names
  for head, protocol in PROTOCOL.items():
    predicted = [names.index(p.classes[0]) for p in predictor.classify(videos, top_k=1, head=head)]
    matrix = np.zeros((len(names), len(names)), int)
    np.add.at(matrix, (labels, predicted), 1)
    assert matrix.tolist() == results['protocols'][protocol]['single_view']['confusion_matrix'], head
  # The web page's logic on the fused model: each sample's global grid and local view, the API's class.
  from scfa_jax.serve import examples, page as page_lib  # pylint: disable=g-import-not-at-top
  fused = page_lib.Page.from_workdir(str(tmp_path / 'run'), k=2)
  clip, = examples.test_split_examples(tiny_config, str(tmp_path / 'examples'), count=1)
  answer = fused.answer(clip, head='probe')
  assert [c for _, c in answer.views] == ['sample 1: global grid', 'sample 1: local view 1']
  assert answer.top1 == fused.predictor.classify([clip], top_k=1, head='probe')[0].classes[0]
  assert len(answer.neighbours) == 2 and answer.neighbours[0][0].shape == answer.views[0][0].shape


@pytest.mark.parametrize('overrides,message', [
    (dict(num_local_views=0), 'num_local_views=0'),
    (dict(eval_local_views=1), 'eval.local_views=1'),
    (dict(per_frame=True), 'per_frame=True'),
    (dict(separate_pathways=True, init_from='/weights'), 'separate_pathways=True'),
    (dict(fusion='sum'), "model.fusion='sum'"),
    (dict(pathway_aux_weight=-1.0), 'pathway_aux_weight=-1.0'),
    (dict(pathway_aux_weight=0.5, loss_name='cross_entropy'), 'pathway_aux_weight=0.5 adds SupCon'),
    (dict(pathway_aux_weight=0.5, fuse=False), 'pathway_aux_weight=0.5 adds per-pathway'),
    (dict(local_aux_weight=-0.5), 'local_aux_weight=-0.5'),
    (dict(local_aux_weight=0.5, fuse=False), 'local_aux_weight=0.5 adds per-pathway'),
    (dict(local_feature_weight=0.0), 'local_feature_weight=0.0'),
    (dict(local_feature_weight=0.5, fusion='attention'), "local_feature_weight=0.5 weighs the local views' half"),
    (dict(local_feature_weight=0.5, fuse=False), 'local_feature_weight=0.5 weighs the local views of fused'),
])
def test_fusion_settings_that_cannot_work_are_refused(overrides, message):
  config = make_tiny_config('unused')
  config.data.update(num_local_views=1, local_grid=1, fuse_local_views=True)
  config.eval.local_views = overrides.pop('eval_local_views', 0)
  config.data.num_local_views = overrides.pop('num_local_views', 1)
  config.data.fuse_local_views = overrides.pop('fuse', True)
  config.loss.pathway_aux_weight = overrides.pop('pathway_aux_weight', 0.0)
  config.loss.local_aux_weight = overrides.pop('local_aux_weight', None)
  config.loss.name = overrides.pop('loss_name', 'supcon')
  config.model.update(overrides)
  found = config_validation.problems(config, device_count=1)
  assert any(message in p for p in found), found


def test_data_modules_never_import_the_config_validation_above_them():
  """config_validation -> data.views -> data.augment must not lead back to config_validation."""
  for name in ('augment', 'views', 'sampling', 'grid', 'preprocessing'):
    with open(os.path.join(ROOT, 'scfa_jax', 'data', f'{name}.py')) as f:
      tree = ast.parse(f.read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert 'config_validation' not in imported, name
