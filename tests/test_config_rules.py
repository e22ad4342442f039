"""Every rule of ``config_validation.RULES`` refuses a value outside what it allows, and each cross-field rule fires.

The table below is written by hand, apart from the rules: a rule removed from
``RULES`` (or a bound moved) fails here, and so does a rule added without an
entry, so no config rule goes untested.
"""

import ml_collections
import pytest

from scfa_jax import config as base_config
from scfa_jax import config_validation
from scfa_jax import errors

# field: (values the rule must refuse, values at its bounds it must accept)
BAD_AND_BOUNDARY = {
    'data.name': (['', None], ['synthetic_motion']),
    'data.train_split': (['', None], ['train']),
    'data.test_split': (['', None], ['test']),
    'data.frames_key': (['', None], ['frames']),
    'data.shorter_side': ([-1], [0]),
    'data.max_bad_fraction': ([-0.01, 1.01], [0.0, 1.0]),
    'data.grid_rows': ([0, 9], [1, 8]),
    'data.grid_cols': ([0, 9], [1, 8]),
    'data.tile_size': ([0, -56], [1]),
    'data.train_sampling': (['random', ''], ['segment', 'random_sorted', 'uniform']),
    'data.eval_sampling': (['middle'], ['segment', 'random_sorted', 'uniform']),
    'data.shuffle_buffer': ([0], [1]),
    'data.preprocessing': (['bgr'], ['auto', 'imagenet', 'caffe', 'unit']),
    'data.prefetch_to_device': ([-1], [0]),
    'data.num_global_views': ([0], [1]),
    'data.num_local_views': ([-1], [0]),
    'data.local_grid': ([0], [1]),
    'data.local_frames_stride': ([0], [1]),
    'data.fuse_local_views': ([1, 'yes', None], [False]),
    'data.balanced_batches_per_class': ([-1], [0]),
    'loss.queue_size': ([-1], [0]),
    'loss.pathway_aux_weight': ([-0.1], [0.0]),
    'loss.local_aux_weight': ([-0.1], [None, 0.0]),
    'model.local_feature_weight': ([0.0, -1.0], [1.0]),
    'data.view_span': ([(0.8, 0.5), (0.0, 1.0), (0.5, 1.1), (0.5,), 'x'], [(1.0, 1.0), (0.3, 0.6)]),
    'data.augment.crop_scale': ([(0.8, 0.5), (0.0, 1.0), (0.5, 1.1), (0.5,), 'x'], [(1.0, 1.0), (0.01, 1.0)]),
    'data.augment.crop_ratio': ([(1.3, 0.75), (0.0, 1.0), (1.0,)], [(0.01, 100.0)]),
    'data.augment.crop_local_views': ([1, 'yes', None], [False]),
    'data.augment.brightness': ([-0.1, 1.1], [0.0, 1.0]),
    'data.augment.contrast': ([-0.1, 1.1], [0.0, 1.0]),
    'data.augment.saturation': ([-0.1, 1.1], [0.0, 1.0]),
    'data.augment.hue': ([-0.1, 0.51], [0.0, 0.5]),
    'model.depth': ([20, 0], [10, 152]),
    'model.width': ([0], [1]),
    'model.variant': (['v2'], ['v1', 'v1.5']),
    'model.bn_momentum': ([1.0, -0.1, 1.5], [0.0, 0.999]),  # 1.0 would freeze the statistics at their init
    'model.dtype': (['float16'], ['float32', 'bfloat16']),
    'model.proj_hidden_dim': ([0], [1]),
    'model.proj_dim': ([0], [1]),
    'model.classifier_hidden_dim': ([-1], [0]),
    'model.per_frame': ([1, 'no'], [False]),
    'model.fusion': (['sum'], ['concat', 'attention']),
    'model.separate_pathways': ([0, 'no'], [False]),
    'loss.name': (['simclr'], ['supcon', 'cross_entropy']),
    'loss.temperature': ([0.0, -0.07], [1e-6]),
    'loss.base_temperature': ([0.0, -0.07], [1e-6]),
    'optim.learning_rate': ([0.0, -1e-4], [1e-9]),
    'optim.warmup_epochs': ([-1.0], [0.0]),
    'optim.end_learning_rate_factor': ([-0.1, 1.1], [0.0, 1.0]),
    'optim.weight_decay': ([-1e-4], [0.0]),
    'optim.grad_clip_norm': ([-1.0], [0.0]),
    'train.batch_size': ([0], [1]),
    'train.num_epochs': ([0], [1]),
    'train.log_every_steps': ([0], [1]),
    'train.max_steps': ([0, -2], [-1, 1]),
    'train.parallelism': (['pjit'], ['pmap', 'jit']),
    'ckpt.every_steps': ([0], [1]),
    'ckpt.max_to_keep': ([0], [1]),
    'eval.batch_size': ([0], [1]),
    'eval.knn_k': ([0], [1]),
    'eval.knn_temperature': ([0.0], [1e-6]),
    'eval.linear_probe_c': ([0.0], [1e-6]),
    'eval.linear_probe_max_iter': ([0], [1]),
    'eval.num_test_clips': ([0], [1]),
    'eval.local_views': ([-1], [0]),
    'eval.retrieval_ks': ([(0, 5), (1, 2.5), ('1',)], [(), (1,)]),
    'eval.finetune_epochs': ([-1], [0]),
    'eval.finetune_learning_rate': ([0.0], [1e-9]),
    'data.label_fraction': ([0.0, -0.1, 1.01], [1.0, 0.01]),
    'model.momentum': ([1.0, -0.1], [0.0, 0.999]),  # 1.0 would freeze the key encoder at its init
    'model.momentum_schedule': (['linear'], ['constant', 'cosine']),
    'model.classifier_init': (['linear', ''], ['random']),  # 'probe' needs a classifier: a cross-field rule
    'loss.positives': (['instance', ''], ['label', 'video']),
    'loss.pretext.arrow_of_time': ([-0.1], [0.0]),
    'loss.pretext.speed': ([-0.1], [0.0]),
    'loss.pretext.shuffle': ([-0.1], [0.0]),
    'loss.pretext.speed_classes': ([1, 0], [2]),
    'loss.pretext.backwards_share': ([-0.1, 1.01], [0.0, 1.0]),
}


def _config(**fields) -> ml_collections.ConfigDict:
  """The default config with dotted ``fields`` set, without ml_collections' type checks.

  A config read back from a workdir's config.json, or built by a notebook, is not type-safe, so every rule
  must hold on its own, whatever type the value has.
  """
  tree = base_config.get_config().to_dict()
  tree['data']['name'] = 'synthetic_motion'
  for key, value in fields.items():
    *path, leaf = key.split('.')
    node = tree
    for part in path:
      node = node[part]
    node[leaf] = value
  return ml_collections.ConfigDict(tree)


def test_every_rule_has_a_row_and_every_row_a_rule():
  fields = [rule.field for rule in config_validation.RULES]
  assert len(fields) == len(set(fields)), 'a field with two rules: merge them'
  assert set(fields) == set(BAD_AND_BOUNDARY), (
      f'rules without a row here: {sorted(set(fields) - set(BAD_AND_BOUNDARY))}; '
      f'rows without a rule: {sorted(set(BAD_AND_BOUNDARY) - set(fields))}')


def test_the_default_config_passes():
  assert config_validation.problems(_config(), device_count=1) == []


@pytest.mark.parametrize('rule', config_validation.RULES, ids=lambda rule: rule.field)
def test_each_rule_refuses_what_it_does_not_allow_in_one_line_naming_its_field(rule):
  bad_values, boundary_values = BAD_AND_BOUNDARY[rule.field]
  for value in bad_values:
    with pytest.raises(errors.ConfigError) as e:
      config_validation.validate(_config(**{rule.field: value}), device_count=1)
    assert str(e.value) == f'config.{rule.field}={value!r} is not allowed: expected {rule.allowed}.', value
  for value in boundary_values:
    assert config_validation.problems(_config(**{rule.field: value}), device_count=1) == [], value


# --- the cross-field rules: each field fine alone, the pair refused ----------------------------------------------

FUSED = {'data.fuse_local_views': True, 'data.num_local_views': 1}


@pytest.mark.parametrize('fields,message', [
    ({'loss.queue_size': 64, 'loss.name': 'cross_entropy'},
     "config.loss.queue_size=64 needs config.loss.name='supcon' (0 turns the queue off)."),
    ({'model.sync_batch_norm': False, 'train.parallelism': 'jit'},
     "config.model.sync_batch_norm=False needs config.train.parallelism='pmap' (the jit path's BatchNorm is always "
     'over the global batch): set one of them.'),
    ({'model.per_frame': True, 'data.num_local_views': 1},
     'config.model.per_frame=True (TSN) encodes the tiles of a grid_rows x grid_cols grid, but '
     'config.data.num_local_views=1 adds views of another layout: set one of them off.'),
    ({'model.per_frame': True, 'eval.local_views': 2},
     'config.model.per_frame=True (TSN) encodes the tiles of a grid_rows x grid_cols grid, but '
     'config.eval.local_views=2 adds views of another layout: set one of them off.'),
    ({'loss.pathway_aux_weight': 0.5},
     'config.loss.pathway_aux_weight=0.5 adds per-pathway terms of fused samples: set '
     'config.data.fuse_local_views=True (or the weight to 0).'),
    ({'loss.local_aux_weight': 0.5},
     'config.loss.local_aux_weight=0.5 adds per-pathway terms of fused samples: set '
     'config.data.fuse_local_views=True (or the weight to 0).'),
    ({'model.local_feature_weight': 0.5},
     'config.model.local_feature_weight=0.5 weighs the local views of fused samples: set '
     'config.data.fuse_local_views=True (or the weight to 1).'),
    ({**FUSED, 'loss.pathway_aux_weight': 0.5, 'loss.name': 'cross_entropy'},
     "config.loss.pathway_aux_weight=0.5 adds SupCon terms: it needs config.loss.name='supcon' (or the weight 0)."),
    ({**FUSED, 'model.local_feature_weight': 0.5, 'model.fusion': 'attention'},
     "config.model.local_feature_weight=0.5 weighs the local views' half of a concatenation, but "
     "config.model.fusion='attention': set fusion='concat' (or the weight to 1)."),
    ({**FUSED, 'data.num_local_views': 0},
     'config.data.fuse_local_views=True fuses the global grid with local views, but config.data.num_local_views=0: '
     'set it >= 1 (or fuse_local_views=False).'),
    ({**FUSED, 'eval.local_views': 1},
     'config.eval.local_views=1 adds unfused local test views; fused samples (config.data.fuse_local_views=True) '
     'already carry theirs: set it to 0.'),
    ({'loss.positives': 'video', 'loss.name': 'cross_entropy'},
     "config.loss.positives='video' (instance contrast) needs config.loss.name='supcon' (cross_entropy reads "
     'labels): set one of them.'),
    ({'model.momentum': 0.99, 'loss.name': 'cross_entropy'},
     "config.model.momentum=0.99 gives contrastive keys: it needs config.loss.name='supcon' (0 turns the key "
     'encoder off).'),
    ({'loss.pretext.arrow_of_time': 0.5, 'data.grid_rows': 1, 'data.grid_cols': 1},
     'config.loss.pretext.arrow_of_time > 0 predicts how frames are ordered, but a 1x1 grid shows one frame: use a '
     'larger grid (config.data.grid_rows/grid_cols) or set the weights to 0.'),
    ({'loss.pretext.speed': 0.5, 'model.per_frame': True},
     'config.loss.pretext.speed > 0 predicts frame order, which the TSN average of frame features '
     '(config.model.per_frame=True) cannot see: set one of them off.'),
    ({'loss.pretext.arrow_of_time': 0.5, 'loss.pretext.reversed_negatives': True,
      'loss.pretext.backwards_share': 0.0},
     'config.loss.pretext.reversed_negatives=True contrasts against backwards-played grids, but '
     'config.loss.pretext.backwards_share=0 plays none backwards: raise it (1.0 = every video).'),
    ({'model.classifier_init': 'probe'},
     "config.model.classifier_init='probe' starts a classifier, and this run trains none: set "
     "config.loss.name='cross_entropy' or config.eval.finetune_epochs > 0 (or classifier_init='random')."),
    ({'model.classifier_init': 'probe', 'loss.name': 'cross_entropy', 'model.classifier_hidden_dim': 16},
     "config.model.classifier_init='probe' starts a linear classifier from a linear probe, but "
     "config.model.classifier_hidden_dim=16 adds a hidden layer: set it to 0 (or classifier_init='random')."),
    ({**FUSED, 'model.separate_pathways': True, 'model.init_from': '/weights/keras_resnet50'},
     'config.model.separate_pathways=True gives every pathway a ResNet of its own; ported weights '
     '(config.model.init_from) fit one shared ResNet: set one of them off.'),
])
def test_each_cross_field_rule_refuses_the_pair_and_accepts_each_half(fields, message):
  assert config_validation.problems(_config(**fields), device_count=1) == [message]
  for field in fields:  # drop one field of the pair (back to its default): the rest is fine
    rest = {k: v for k, v in fields.items() if k != field}
    if field in FUSED and rest.keys() >= FUSED.keys() - {field}:
      continue  # dropping a part of the fused set-up is another rule's business
    assert message not in config_validation.problems(_config(**rest), device_count=1), field


def test_a_local_grid_that_does_not_fit_is_named():
  found = config_validation.problems(_config(**{'data.num_local_views': 1, 'data.local_grid': 3}), device_count=1)
  assert len(found) == 1 and 'config.data.local_grid' in found[0] and '\n' not in found[0]
