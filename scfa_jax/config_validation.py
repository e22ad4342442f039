"""Every config field checked before a dataset is built or a step runs.

Pure functions of the config (and of the device count and the dataset's split
sizes, passed in): each problem names the field, the bad value and what is
allowed, in one line, so ``main`` can print it instead of a traceback from
deep inside tf.data or XLA. ``ml_collections`` already rejects unknown keys and
wrong types; this module checks values. Fields another module adds later are
checked only when present.

Import direction: this module sits above ``data`` and ``models`` (it reads
the allowed values from ``scfa_jax.config`` and ``layout.local_grid_spec``);
nothing under ``data`` imports it, the input pipeline (which builds on
``data``) calls it. It imports neither TensorFlow nor JAX (the dataset checks
import the labels module when they run, once a dataset is open), so ``main``
checks a config before those imports: a bad value is refused in about a second.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import ml_collections

from scfa_jax import config as base_config
from scfa_jax import errors
from scfa_jax.data import layout
from scfa_jax.data import preprocessing

# A 1x1 "grid" is the single-frame baseline (configs/demo_single_frame.py); 8x8 = 64 frames per view,
# 4x the paper's 16, is where one view's decode and the grid image's memory stop being practical.
GRID_MIN, GRID_MAX = 1, 8
LOSSES = ('supcon', 'cross_entropy')
POSITIVES = ('label', 'video')
CLASSIFIER_INITS = ('random', 'probe')
DTYPES = ('float32', 'bfloat16')
PARALLELISMS = ('pmap', 'jit')


@dataclasses.dataclass(frozen=True)
class Rule:
  """``check(value)`` must hold for ``config.<field>``; ``allowed`` says what does, for the message."""

  field: str
  check: Callable[[Any], bool]
  allowed: str


def one_of(field: str, values: Sequence[Any]) -> Rule:
  # Types count: ``1 in (False, True)`` holds in Python, and a 1 in a hand-written config.json is not a switch.
  return Rule(field, lambda v: any(type(v) is type(x) and v == x for x in values), f'one of {", ".join(repr(x) for x in values)}')


def at_least(field: str, low: float) -> Rule:
  return Rule(field, lambda v: v >= low, f'>= {low}')


def positive(field: str) -> Rule:
  return Rule(field, lambda v: v > 0, '> 0')


def between(field: str, low: float, high: float, *, open_high: bool = False) -> Rule:
  if open_high:
    return Rule(field, lambda v: low <= v < high, f'in [{low}, {high})')
  return Rule(field, lambda v: low <= v <= high, f'in [{low}, {high}]')


def _range_pair(low: float, high: float | None) -> Callable[[Any], bool]:
  """A (min, max) pair with low < min <= max (<= high)."""
  def check(pair: Any) -> bool:
    lo, hi = pair
    return low < lo <= hi and (high is None or hi <= high)
  return check


RULES: tuple[Rule, ...] = (
    Rule('data.name', lambda v: bool(v), 'a dataset name, e.g. synthetic_motion, hmdb51 or any TFDS name'),
    Rule('data.train_split', lambda v: bool(v), 'a split name, e.g. train'),
    Rule('data.test_split', lambda v: bool(v), 'a split name, e.g. test'),
    Rule('data.label_fraction', lambda v: 0.0 < v <= 1.0, 'in (0, 1]: the share of each class whose labels are read'),
    Rule('data.frames_key', lambda v: bool(v), 'the feature holding the frames, e.g. frames'),
    at_least('data.shorter_side', 0),
    between('data.max_bad_fraction', 0.0, 1.0),
    between('data.grid_rows', GRID_MIN, GRID_MAX),
    between('data.grid_cols', GRID_MIN, GRID_MAX),
    at_least('data.tile_size', 1),
    one_of('data.train_sampling', base_config.SAMPLING_METHODS),
    Rule('data.view_span', _range_pair(0.0, 1.0), '(min, max) with 0 < min <= max <= 1'),
    one_of('data.eval_sampling', base_config.SAMPLING_METHODS),
    at_least('data.shuffle_buffer', 1),
    one_of('data.preprocessing', ('auto',) + tuple(preprocessing.MODES)),
    at_least('data.prefetch_to_device', 0),
    at_least('data.num_global_views', 1),
    at_least('data.num_local_views', 0),
    at_least('data.local_grid', 1),
    at_least('data.local_frames_stride', 1),
    one_of('data.fuse_local_views', (False, True)),
    at_least('data.balanced_batches_per_class', 0),
    at_least('loss.queue_size', 0),
    at_least('loss.pathway_aux_weight', 0),
    Rule('loss.local_aux_weight', lambda v: v is None or v >= 0, 'None (= loss.pathway_aux_weight) or >= 0'),
    positive('model.local_feature_weight'),
    Rule('data.augment.crop_scale', _range_pair(0.0, 1.0), '(min, max) with 0 < min <= max <= 1'),
    Rule('data.augment.crop_ratio', _range_pair(0.0, None), '(min, max) with 0 < min <= max'),
    one_of('data.augment.crop_local_views', (False, True)),
    between('data.augment.brightness', 0.0, 1.0),
    between('data.augment.contrast', 0.0, 1.0),
    between('data.augment.saturation', 0.0, 1.0),
    between('data.augment.hue', 0.0, 0.5),
    one_of('model.depth', base_config.RESNET_DEPTHS),
    at_least('model.width', 1),
    one_of('model.variant', base_config.RESNET_VARIANTS),
    between('model.bn_momentum', 0.0, 1.0, open_high=True),
    one_of('model.dtype', DTYPES),
    between('model.momentum', 0.0, 1.0, open_high=True),
    one_of('model.momentum_schedule', base_config.MOMENTUM_SCHEDULES),
    at_least('model.proj_hidden_dim', 1),
    at_least('model.proj_dim', 1),
    at_least('model.classifier_hidden_dim', 0),
    one_of('model.classifier_init', CLASSIFIER_INITS),
    one_of('model.per_frame', (False, True)),
    one_of('model.fusion', base_config.FUSIONS),
    one_of('model.separate_pathways', (False, True)),
    one_of('loss.name', LOSSES),
    one_of('loss.positives', POSITIVES),
    at_least('loss.pretext.arrow_of_time', 0),
    at_least('loss.pretext.speed', 0),
    at_least('loss.pretext.shuffle', 0),
    at_least('loss.pretext.speed_classes', 2),
    between('loss.pretext.backwards_share', 0, 1),
    positive('loss.temperature'),
    positive('loss.base_temperature'),
    positive('optim.learning_rate'),
    at_least('optim.warmup_epochs', 0),
    between('optim.end_learning_rate_factor', 0.0, 1.0),
    at_least('optim.weight_decay', 0),
    at_least('optim.grad_clip_norm', 0),
    at_least('train.batch_size', 1),
    at_least('train.num_epochs', 1),
    at_least('train.log_every_steps', 1),
    Rule('train.max_steps', lambda v: v == -1 or v >= 1, '-1 (all epochs) or >= 1'),
    one_of('train.parallelism', PARALLELISMS),
    at_least('ckpt.every_steps', 1),
    at_least('ckpt.max_to_keep', 1),
    at_least('eval.batch_size', 1),
    at_least('eval.knn_k', 1),
    positive('eval.knn_temperature'),
    positive('eval.linear_probe_c'),
    at_least('eval.linear_probe_max_iter', 1),
    at_least('eval.num_test_clips', 1),
    at_least('eval.local_views', 0),
    Rule('eval.retrieval_ks', lambda ks: all(isinstance(k, int) and k >= 1 for k in ks),
         'cut-offs >= 1, e.g. (1, 5, 10), or () to skip retrieval'),
    at_least('eval.finetune_epochs', 0),
    positive('eval.finetune_learning_rate'),
)


def _get(config: ml_collections.ConfigDict, field: str) -> tuple[bool, Any]:
  """(present, value) of a dotted field."""
  node: Any = config
  for part in field.split('.'):
    if part not in node:
      return False, None
    node = node[part]
  return True, node


def _raise_if(found: list[str]) -> None:
  """One problem: its line; several: a short block, one indented line each."""
  if len(found) == 1:
    raise errors.ConfigError(found[0])
  if found:
    raise errors.ConfigError(f'{len(found)} config fields cannot work:\n' + '\n'.join(f'  {p}' for p in found))


def _problem(field: str, value: Any, allowed: str) -> str:
  return f'config.{field}={value!r} is not allowed: expected {allowed}.'


def problems(config: ml_collections.ConfigDict, *, device_count: int | None) -> list[str]:
  """One line per field whose value cannot work (empty when the config is fine).

  Args:
    config: the full run config (``scfa_jax/config.py``).
    device_count: devices of all hosts (``jax.device_count()``), which the
      global batch sizes are split over; None (before JAX starts) skips that check.
  """
  found = _rule_problems(config, RULES) + _combination_problems(config)
  for field in ('train.batch_size', 'eval.batch_size') if device_count else ():
    _, value = _get(config, field)
    if isinstance(value, int) and value >= 1 and value % device_count:
      found.append(_problem(field, value, f'a multiple of the {device_count} devices (it is split over them)'))
  return found


def _combination_problems(config: ml_collections.ConfigDict) -> list[str]:
  """Fields that are fine alone but cannot work together."""
  found = []
  if _get(config, 'data.num_local_views')[1] or _get(config, 'eval.local_views')[1]:
    try:
      layout.local_grid_spec(config.data)
    except ValueError as e:  # its message names the fields and what would fit
      found.append(str(e))
  queue_size = _get(config, 'loss.queue_size')[1]
  if queue_size and config.loss.name != 'supcon':
    found.append(f"config.loss.queue_size={queue_size} needs config.loss.name='supcon' (0 turns the queue off).")
  positives = _get(config, 'loss.positives')[1]
  if positives == 'video' and _get(config, 'loss.name')[1] != 'supcon':
    found.append("config.loss.positives='video' (instance contrast) needs config.loss.name='supcon' "
                 "(cross_entropy reads labels): set one of them.")
  found += _pretext_problems(config)
  if _positive(_get(config, 'model.momentum')[1]) and _get(config, 'loss.name')[1] != 'supcon':
    found.append(f"config.model.momentum={config.model.momentum} gives contrastive keys: it needs "
                 "config.loss.name='supcon' (0 turns the key encoder off).")
  if _get(config, 'train.parallelism')[1] == 'jit' and _get(config, 'model.sync_batch_norm')[1] is False:
    # The jit path is one global computation: its BatchNorm statistics are over the global batch by construction.
    found.append("config.model.sync_batch_norm=False needs config.train.parallelism='pmap' (the jit path's "
                 'BatchNorm is always over the global batch): set one of them.')
  found += _fusion_problems(config)
  found += _classifier_init_problems(config)
  for field in ('data.num_local_views', 'eval.local_views'):
    local_views = _get(config, field)[1]
    if _get(config, 'model.per_frame')[1] is True and local_views:
      found.append(f'config.model.per_frame=True (TSN) encodes the tiles of a grid_rows x grid_cols grid, but '
                   f'config.{field}={local_views} adds views of another layout: set one of them off.')
  return found


def _classifier_init_problems(config: ml_collections.ConfigDict) -> list[str]:
  """``model.classifier_init='probe'`` needs a classifier to start, and a linear one."""
  if _get(config, 'model.classifier_init')[1] != 'probe':
    return []
  if _get(config, 'loss.name')[1] != 'cross_entropy' and not _positive(_get(config, 'eval.finetune_epochs')[1]):
    return ["config.model.classifier_init='probe' starts a classifier, and this run trains none: set "
            "config.loss.name='cross_entropy' or config.eval.finetune_epochs > 0 (or classifier_init='random')."]
  hidden = _get(config, 'model.classifier_hidden_dim')[1]
  if _positive(hidden):
    return [f"config.model.classifier_init='probe' starts a linear classifier from a linear probe, but "
            f'config.model.classifier_hidden_dim={hidden} adds a hidden layer: set it to 0 (or '
            "classifier_init='random')."]
  return []


def _pretext_problems(config: ml_collections.ConfigDict) -> list[str]:
  """Temporal pretext tasks need frame order to predict, in a view that shows it."""
  tasks = [t for t in ('arrow_of_time', 'speed', 'shuffle') if _positive(_get(config, f'loss.pretext.{t}')[1])]
  if _get(config, 'loss.pretext.reversed_negatives')[1] is True and 'arrow_of_time' not in tasks:
    return ['config.loss.pretext.reversed_negatives=True contrasts against the backwards-played grids of the '
            'arrow-of-time task: set config.loss.pretext.arrow_of_time > 0 (or reversed_negatives=False).']
  if (_get(config, 'loss.pretext.reversed_negatives')[1] is True
      and _get(config, 'loss.pretext.backwards_share')[1] == 0):
    return ['config.loss.pretext.reversed_negatives=True contrasts against backwards-played grids, but '
            'config.loss.pretext.backwards_share=0 plays none backwards: raise it (1.0 = every video).']
  if not tasks:
    return []
  named = ', '.join(f'config.loss.pretext.{t}' for t in tasks)
  found = []
  if _get(config, 'data.grid_rows')[1] == 1 and _get(config, 'data.grid_cols')[1] == 1:
    found.append(f'{named} > 0 predicts how frames are ordered, but a 1x1 grid shows one frame: use a larger '
                 'grid (config.data.grid_rows/grid_cols) or set the weights to 0.')
  if _get(config, 'model.per_frame')[1] is True:
    found.append(f'{named} > 0 predicts frame order, which the TSN average of frame features '
                 '(config.model.per_frame=True) cannot see: set one of them off.')
  if _get(config, 'loss.name')[1] != 'supcon':
    found.append(f"{named} > 0 are terms of contrastive pre-training: they need config.loss.name='supcon'.")
  return found


def _fusion_problems(config: ml_collections.ConfigDict) -> list[str]:
  """Fused multi-scale samples need local views to fuse, and carry them at evaluation too."""
  aux_weights = [(field, value) for field in ('loss.pathway_aux_weight', 'loss.local_aux_weight')
                 for value in [_get(config, field)[1]] if _positive(value)]
  feature_weight = _get(config, 'model.local_feature_weight')[1]
  reweighted = _positive(feature_weight) and feature_weight != 1
  if _get(config, 'data.fuse_local_views')[1] is not True:
    found = [f'config.{field}={value} adds per-pathway terms of fused samples: set '
             'config.data.fuse_local_views=True (or the weight to 0).' for field, value in aux_weights]
    if reweighted:
      found.append(f'config.model.local_feature_weight={feature_weight} weighs the local views of fused samples: '
                   'set config.data.fuse_local_views=True (or the weight to 1).')
    return found
  found = [f"config.{field}={value} adds SupCon terms: it needs config.loss.name='supcon' (or the weight 0)."
           for field, value in aux_weights if _get(config, 'loss.name')[1] != 'supcon']
  fusion_name = _get(config, 'model.fusion')[1]
  if reweighted and fusion_name != 'concat':
    found.append(f"config.model.local_feature_weight={feature_weight} weighs the local views' half of a "
                 f"concatenation, but config.model.fusion={fusion_name!r}: set fusion='concat' (or the weight to 1).")
  local_views = _get(config, 'data.num_local_views')[1]
  if not local_views:
    found.append(f'config.data.fuse_local_views=True fuses the global grid with local views, but '
                 f'config.data.num_local_views={local_views}: set it >= 1 (or fuse_local_views=False).')
  eval_local = _get(config, 'eval.local_views')[1]
  if eval_local:
    found.append(f'config.eval.local_views={eval_local} adds unfused local test views; fused samples '
                 '(config.data.fuse_local_views=True) already carry theirs: set it to 0.')
  if _get(config, 'model.separate_pathways')[1] is True and _get(config, 'model.init_from')[1]:
    found.append('config.model.separate_pathways=True gives every pathway a ResNet of its own; ported weights '
                 '(config.model.init_from) fit one shared ResNet: set one of them off.')
  return found


def _positive(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _rule_problems(config: ml_collections.ConfigDict, rules: Sequence[Rule]) -> list[str]:
  found = []
  for rule in rules:
    present, value = _get(config, rule.field)
    if not present:
      continue
    try:
      ok = rule.check(value)
    except (TypeError, ValueError):  # e.g. a crop_scale that is not a pair
      ok = False
    if not ok:
      found.append(_problem(rule.field, value, rule.allowed))
  return found


def validate(config: ml_collections.ConfigDict, *, device_count: int | None) -> None:
  """Raises :class:`errors.ConfigError` listing every bad field (one line each)."""
  _raise_if(problems(config, device_count=device_count))


def validate_augment(aug_config: ml_collections.ConfigDict) -> None:
  """The ``data.augment`` rules alone, for callers holding only that part (the input pipeline)."""
  config = ml_collections.ConfigDict({'data': {'augment': aug_config}})
  _raise_if(_rule_problems(config, [r for r in RULES if r.field.startswith('data.augment.')]))


def dataset_problems(config: ml_collections.ConfigDict, split_sizes: Mapping[str, int],
                     feature_names: Sequence[str], *, dataset: str, process_count: int) -> list[str]:
  """The config against the prepared dataset: its splits are there, hold a batch, and the frames feature exists.

  Args:
    config: the run config.
    split_sizes: {split name: number of examples} of the prepared dataset.
    feature_names: the dataset's top-level features.
    dataset: its full name, for the message.
    process_count: hosts; each needs a full local batch of its share of the train split.
  """
  from scfa_jax.data import labels as labels_lib  # pylint: disable=g-import-not-at-top  # TF: a dataset is open by now
  found = []
  if config.data.frames_key not in feature_names:
    found.append(_problem('data.frames_key', config.data.frames_key,
                          f'a feature of {dataset}: {", ".join(sorted(feature_names))}'))
  available = ', '.join(sorted(split_sizes))
  labelled = labels_lib.LABEL_KEY in feature_names  # without labels there is nothing to test: no test split needed
  for field in ('data.train_split', 'data.test_split') if labelled else ('data.train_split',):
    _, split = _get(config, field)
    if split not in split_sizes:
      found.append(_problem(field, split, f'a split of {dataset}: {available}'))
  found += _label_problems(config, feature_names, dataset=dataset)
  train = config.data.train_split
  if train in split_sizes and split_sizes[train] // process_count < config.train.batch_size // process_count:
    found.append(_problem('train.batch_size', config.train.batch_size,
                          f'at most the {split_sizes[train]} videos of split {train!r} of {dataset}'))
  return found


def _label_problems(config: ml_collections.ConfigDict, feature_names: Sequence[str], *, dataset: str) -> list[str]:
  """A dataset without labels (no 'label' feature) trains only with a loss that reads none."""
  from scfa_jax.data import labels as labels_lib  # pylint: disable=g-import-not-at-top  # as in dataset_problems
  if labels_lib.LABEL_KEY in feature_names:
    return []
  found = []
  if labels_lib.reads_labels(config):
    loss = (f"config.loss.name={config.loss.name!r}" if config.loss.name != 'supcon'
            else f"config.loss.positives={config.loss.get('positives', 'label')!r}")
    found.append(f"{loss} reads labels, but {dataset} has none (unlabelled videos): set "
                 "config.loss.name='supcon' and config.loss.positives='video' (self-supervised).")
  fraction = labels_lib.fraction_of(config)
  if fraction < 1.0:
    found.append(f'config.data.label_fraction={fraction!r} takes a fraction of the labels, but {dataset} has '
                 'none: set it to 1.0.')
  return found


def validate_dataset(config: ml_collections.ConfigDict, split_sizes: Mapping[str, int],
                     feature_names: Sequence[str], *, dataset: str, process_count: int) -> None:
  """Raises :class:`errors.ConfigError` unless :func:`dataset_problems` finds nothing."""
  _raise_if(dataset_problems(config, split_sizes, feature_names, dataset=dataset, process_count=process_count))
