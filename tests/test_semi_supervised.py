"""Labels optional: the labelled fraction (data.label_fraction), init from a workdir, datasets without labels."""

import functools
import pathlib
import shutil

import jax
import numpy as np
import pytest

from scfa_jax import config_validation
from scfa_jax import datasets
from scfa_jax import errors
from scfa_jax.data import input_pipeline
from scfa_jax.data import labels as labels_lib
from scfa_jax.evaluation import embeddings
from scfa_jax.evaluation import finetune as finetune_lib
from scfa_jax.evaluation import heads
from scfa_jax.evaluation import linear_probe
from scfa_jax.evaluation import schema
from scfa_jax.evaluation import unlabelled
from scfa_jax.inference import Predictor
from scfa_jax.inference import predictor as predictor_lib
from scfa_jax.models import scfa
from scfa_jax.training import init_from
from scfa_jax.training import parallel
from scfa_jax.training import steps
from scfa_jax.training import initial_state
from scfa_jax.training import train
from scfa_jax.training import warm_start
from scfa_jax.tools import search
from tests import video_fixtures as vf
from tests.conftest import make_tiny_config

LABELS = np.repeat(np.arange(3), [400, 250, 7])[np.random.default_rng(0).permutation(657)]


def test_stratified_subset_is_seeded_exact_and_keeps_every_class():
  kept = labels_lib.stratified_subset(LABELS, 0.01, seed=0)
  # round(0.01 * n), halves up: 4 of 400, 3 of 250 (2.5), 0 of 7 (0.07; refused by fraction_problems).
  assert np.bincount(LABELS[kept], minlength=3).tolist() == [4, 3, 0]
  assert np.array_equal(kept, np.sort(kept)) and len(set(kept)) == len(kept)
  np.testing.assert_array_equal(kept, labels_lib.stratified_subset(LABELS, 0.01, seed=0))
  assert not np.array_equal(kept, labels_lib.stratified_subset(LABELS, 0.01, seed=1))
  tenth = labels_lib.stratified_subset(LABELS, 0.1, seed=0)
  assert np.bincount(LABELS[tenth], minlength=3).tolist() == [40, 25, 1]
  np.testing.assert_array_equal(labels_lib.stratified_subset(LABELS, 1.0, seed=3), np.arange(len(LABELS)))


def test_bad_label_settings_are_refused_in_one_line():
  config = make_tiny_config('/unused')
  for bad in (0.0, 1.5, -0.1):
    config.data.label_fraction = bad
    assert config_validation.problems(config, device_count=1) == [
        f'config.data.label_fraction={bad!r} is not allowed: expected in (0, 1]: the share of each class whose '
        'labels are read.']
  found = labels_lib.fraction_problems(0.01, {'a': 400, 'b': 250, 'c': 7}, dataset='d/x:1', split='train')
  assert len(found) == 1 and '\n' not in found[0] and 'c (7 videos)' in found[0] and '>= 0.07143' in found[0]
  assert labels_lib.fraction_problems(0.1, {'a': 400, 'c': 7}, dataset='d', split='train') == []
  config.data.label_fraction = 1.0
  no_labels = ['frames', 'video_id', 'num_frames']
  for loss in ('supcon', 'cross_entropy'):
    config.loss.name = loss
    found = config_validation.dataset_problems(config, {'train': 100, 'test': 10}, no_labels, dataset='video_folder',
                                               process_count=1)
    assert len(found) == 1 and 'reads labels, but video_folder has none' in found[0], found
  assert config_validation.dataset_problems(config, {'train': 100, 'test': 10}, no_labels + ['label'],
                                            dataset='d', process_count=1) == []


@pytest.mark.slow(seconds=4)
def test_train_dataset_reads_only_the_kept_videos(tiny_config):
  builder = datasets.get_builder(tiny_config.data)
  labels = labels_lib.split_labels(builder, 'train', 'frames')
  keep = np.flatnonzero(np.isin(labels, [1, 4]))  # the 8 videos of two classes
  assert input_pipeline.steps_per_epoch(builder, 'train', 4, keep=keep) == 2
  ds = input_pipeline.create_train_dataset(builder, tiny_config.data, local_batch_size=4, seed=0, keep=keep)
  seen = np.concatenate([b['label'] for b in ds.take(6).as_numpy_iterator()])
  assert set(seen.tolist()) == {1, 4} and np.bincount(seen[:8]).tolist()[1::3] == [4, 4]  # each epoch: all 8


@pytest.fixture(scope='module')
def fraction_workdir(tiny_data_dir, tmp_path_factory):
  """A tiny SupCon run on half of the labels (2 per class): 1 step per epoch, evaluated."""
  config = make_tiny_config(tiny_data_dir)
  config.data.label_fraction = 0.5
  config.eval.update(num_test_clips=1, retrieval_ks=(1,), plots=False)
  workdir = str(tmp_path_factory.mktemp('fraction') / 'run')
  return config, workdir, train.train_and_evaluate(config, workdir)


@pytest.mark.slow(seconds=8)
def test_label_fraction_trains_and_evaluates_on_the_fraction(fraction_workdir):
  config, _, results = fraction_workdir
  assert results['step'] == 2  # 12 labelled videos = 1 batch of 8 per epoch, 2 epochs (all 24: 3 per epoch)
  assert results['labels'] == {'available': True, 'fraction': 0.5, 'seed': 0, 'num_labelled': 12, 'num_train': 24,
                               'min_per_class': 2}
  assert results['num_train'] == 12  # the probe, kNN and retrieval gallery saw the labelled half only
  schema.validate(results)
  config.data.label_fraction = 0.1  # leaves every class of 4 without a labelled video
  with pytest.raises(errors.ConfigError, match=r'label_fraction=0.1 is not allowed: it leaves 6 class'):
    train.train_and_evaluate(config, fraction_workdir[1] + '_other')


@pytest.mark.slow(seconds=3)
def test_init_from_a_workdir_gives_its_encoder(fraction_workdir):
  _, workdir, _ = fraction_workdir
  config = make_tiny_config(fraction_workdir[0].data.data_dir)
  config.loss.name = 'cross_entropy'
  config.model.init_from = workdir
  train.validate_config(config)
  model = scfa.model_of(config, num_classes=6)
  state = initial_state.create_train_state(jax.random.key(7), model, scfa.input_shape_of(config),
                                   __import__('optax').adam(1e-3), config.model)
  saved = warm_start.workdir_lib.restore_encoder(workdir, warm_start.workdir_lib.load_config(workdir))
  for name in ('encoder', 'projection'):
    jax.tree.map(np.testing.assert_array_equal, state.params[name], saved.variables['params'][name])
  jax.tree.map(np.testing.assert_array_equal, state.batch_stats['encoder'], saved.variables['batch_stats']['encoder'])
  assert 'classifier' in state.params  # fresh: the new run's labels need their own head
  assert init_from.preprocessing(config) == 'imagenet'
  config.model.depth = 18
  with pytest.raises(errors.ConfigError) as raised:
    train.validate_config(config)
  assert '\n' not in str(raised.value) and workdir in str(raised.value) and 'depth=18 here, 10 there' in str(raised.value)


def test_results_without_labels_say_so_and_fit_the_schema():
  config = make_tiny_config('/unused')
  results = unlabelled.results_of('video_folder/unlabelled:1.0.0', config, step=3, num_train=5, num_test=0,
                                  why=unlabelled.reason('video_folder/unlabelled:1.0.0'))
  schema.validate(results)
  assert results['labels']['available'] is False and results['linear_probe_top1'] is None
  assert 'has no labels: nothing to score' in results['protocols']['knn']['reason']


SAMPLES = pathlib.Path(__file__).resolve().parents[1].parent / 'shared' / 'real_samples' / 'hmdb51' / 'videos'


@pytest.fixture(scope='module')
def unlabelled_folder(tmp_path_factory):
  """A flat folder of 3 videos: real HMDB51 clips (../shared/real_samples) where present, else written ones."""
  folder = tmp_path_factory.mktemp('unlabelled')
  real = sorted(SAMPLES.glob('*.avi'), key=lambda p: p.stat().st_size)[:3] if SAMPLES.is_dir() else []
  for i, path in enumerate(real):
    (folder / f'clip {i}.avi').symlink_to(path)
  for i in range(len(real), 3):
    vf.write_video(folder / f'clip {i}.avi', 12 + 4 * i, seed=i)
  return folder


@pytest.mark.slow(seconds=10)
def test_unlabelled_folder_builds_trains_embeds_and_searches(unlabelled_folder, tmp_path):
  config = make_tiny_config(str(tmp_path / 'tfds'))
  config.data.update(name='video_folder', builder_config='', manual_dir=str(unlabelled_folder), shorter_side=16)
  config.train.update(batch_size=2, num_epochs=2)
  config.eval.update(batch_size=2, num_test_clips=1, plots=False, finetune_epochs=1)
  builder = datasets.get_builder(config.data)  # no class subfolder: the unlabelled config, chosen by itself
  assert builder.info.full_name.startswith('video_folder/unlabelled_s16')
  assert not labels_lib.has_labels(builder.info) and builder.info.metadata['labelled'] is False
  assert dict((k, v.num_examples) for k, v in builder.info.splits.items()) == {'train': 3}
  with pytest.raises(errors.ConfigError, match=r"positives='label' reads labels, but video_folder/unlabelled"):
    train.train_and_evaluate(config, str(tmp_path / 'refused'))
  config.loss.positives = 'video'
  workdir = str(tmp_path / 'run')
  results = train.train_and_evaluate(config, workdir)  # fine-tuning is asked for, but there is nothing to tune on
  assert results['step'] == 2 and results['num_train'] == 3 and results['labels']['available'] is False
  assert 'has no labels: nothing to score' in results['protocols']['linear_probe']['reason']
  predictor = Predictor.from_workdir(workdir)
  clips = sorted(str(p) for p in unlabelled_folder.iterdir())
  assert predictor.embed(clips[:1]).shape == (1, 32)
  found = search.search(predictor, [clips[1]], search.load_index(predictor, None), k=3)[0]['neighbours']
  assert found[0]['video'] == 'clip 1.avi' and found[0]['label'] == '' and found[0]['similarity'] > 0.99
  with pytest.raises(predictor_lib.HeadError, match='trained and evaluated without labels'):
    predictor.classify(clips[:1])


def _softmax(z: np.ndarray) -> np.ndarray:
  z = z - z.max(axis=1, keepdims=True)
  return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


@pytest.mark.parametrize('classes', [4, 2])
def test_the_probe_as_a_dense_layer_gives_the_probes_probabilities(classes):
  rng = np.random.default_rng(classes)
  labels = np.arange(60) % classes
  features = rng.normal(size=(60, 12)) * rng.uniform(0.1, 5, size=12) + rng.normal(size=12) * 3 + labels[:, None]
  fitted = linear_probe.fit(features, labels)
  dense = heads.LinearProbe.from_sklearn(fitted).as_dense(classes + 1)  # one class the probe never saw
  assert dense['kernel'].shape == (12, classes + 1) and dense['kernel'].dtype == np.float32
  proba = _softmax(features @ dense['kernel'].astype(np.float64) + dense['bias'])
  np.testing.assert_allclose(proba[:, :classes], fitted.predict_proba(features), atol=1e-4)
  assert proba[:, classes].max() < 1e-10


def test_a_probe_classifier_is_accepted_wherever_a_classifier_starts():
  """The refusals are tests/test_config_rules.py's; these two runs start a classifier, so they are fine."""
  config = make_tiny_config('/unused')
  config.model.classifier_init = 'probe'
  config.eval.finetune_epochs = 1  # evaluation's fine-tune of a SupCon run
  assert config_validation.problems(config, device_count=1) == []
  config.update_from_flattened_dict({'eval.finetune_epochs': 0, 'loss.name': 'cross_entropy'})
  assert config_validation.problems(config, device_count=1) == []


def _probe_of_labelled_videos(state, config) -> tuple[np.ndarray, np.ndarray]:
  """(features of the labelled train videos, a probe fitted on them here) for ``state``'s encoder."""
  builder = datasets.get_builder(config.data)
  p_embed = parallel.pmap_step(functools.partial(steps.embed_step, preprocessing_mode='imagenet'), donate_state=False)
  train_split = embeddings.extract(p_embed, parallel.replicate(state), builder, 'train', config.data,
                                   local_batch_size=8)
  positions = labels_lib.labelled_positions(builder, config)
  features = train_split['features'][positions]
  return features, linear_probe.fit(features, train_split['label'][positions]).predict_proba(features)


@pytest.mark.slow(seconds=12)
def test_fine_tuning_starts_from_the_probe_of_the_labelled_videos_and_resumes_without_refitting(
    fraction_workdir, tmp_path):
  _, pretrained, _ = fraction_workdir
  config = make_tiny_config(fraction_workdir[0].data.data_dir)
  config.loss.name = 'cross_entropy'
  config.data.label_fraction = 0.5
  config.model.update(init_from=pretrained, classifier_init='probe')
  config.train.max_steps = 1
  config.eval.after_training = False
  workdir = str(tmp_path / 'lpft')
  state = train._set_up(config, workdir, mode='train', allow_config_change=False).state  # pylint: disable=protected-access
  features, expected = _probe_of_labelled_videos(state, config)
  classifier = state.params['classifier']
  np.testing.assert_allclose(_softmax(features @ np.asarray(classifier['kernel'], np.float64) + classifier['bias']),
                             expected, atol=1e-4)
  train.train_and_evaluate(config, workdir)  # one step, checkpointed
  resumed = train._set_up(config, workdir, mode='train', allow_config_change=False).state  # pylint: disable=protected-access
  checkpointed = train._set_up(config, workdir, mode='eval', allow_config_change=False).state  # pylint: disable=protected-access
  assert int(resumed.step) == 1
  jax.tree.map(np.testing.assert_array_equal, resumed.params['classifier'], checkpointed.params['classifier'])
  assert np.abs(np.asarray(resumed.params['classifier']['kernel']) - classifier['kernel']).max() > 1e-6  # trained


@pytest.mark.slow(seconds=6)
def test_evaluations_fine_tune_starts_from_its_probe_in_a_folder_of_its_own(fraction_workdir, tmp_path):
  _, workdir, _ = fraction_workdir
  config = make_tiny_config(fraction_workdir[0].data.data_dir)
  config.data.label_fraction = 0.5  # the fixture's (another test changes the fixture's config)
  pretrained = train._set_up(config, workdir, mode='eval', allow_config_change=False).state  # pylint: disable=protected-access
  features, _ = _probe_of_labelled_videos(pretrained, config)
  probe = heads.LinearProbe.from_sklearn(linear_probe.fit(features, np.arange(len(features)) % 6))
  config.eval.finetune_epochs = 0  # no step: the state the fine-tune starts from
  random_dir = finetune_lib.run_dir(str(tmp_path), 2, config)
  assert 'model.classifier_init' not in finetune_lib.settings(config)  # the default keeps earlier releases' folders
  config.model.classifier_init = 'probe'
  assert finetune_lib.run_dir(str(tmp_path), 2, config) != random_dir
  builder = datasets.get_builder(config.data)
  tuned = jax.device_get(finetune_lib.finetune(pretrained, 2, builder, config, preprocessing_mode='imagenet',
                                               workdir=str(tmp_path), probe=probe))
  dense = probe.as_dense(6)
  np.testing.assert_array_equal(tuned.params['classifier']['kernel'], dense['kernel'])
  np.testing.assert_array_equal(tuned.params['classifier']['bias'], dense['bias'])
  jax.tree.map(np.testing.assert_array_equal, tuned.params['encoder'], jax.device_get(pretrained.params['encoder']))


@pytest.mark.slow(seconds=15)
def test_evaluation_hands_its_fitted_probe_to_the_fine_tune(fraction_workdir, monkeypatch, tmp_path):
  """``--mode=eval`` with a fine-tune and classifier_init='probe': the fine-tune gets the probe just fitted."""
  _, workdir, _ = fraction_workdir
  copy = str(tmp_path / 'run')
  shutil.copytree(workdir, copy)  # evaluation rewrites results and heads: leave the shared fixture alone
  config = make_tiny_config(fraction_workdir[0].data.data_dir)
  config.data.label_fraction = 0.5
  config.eval.update(num_test_clips=1, retrieval_ks=(1,), plots=False, finetune_epochs=1)
  config.model.classifier_init = 'probe'
  handed = {}

  def fake_finetune(state, *args, probe=None, **kwargs):  # pylint: disable=unused-argument
    handed['probe'] = probe
    raise RuntimeError('stop after the hand-over')

  monkeypatch.setattr(finetune_lib, 'finetune', fake_finetune)
  with pytest.raises(RuntimeError, match='stop after the hand-over'):
    train.evaluate_workdir(config, copy)
  saved = heads.load(copy).probe  # what evaluation fitted and saved before fine-tuning
  assert isinstance(handed['probe'], heads.LinearProbe)
  for field in ('mean', 'scale', 'coef', 'intercept', 'labels'):
    np.testing.assert_array_equal(getattr(handed['probe'], field), getattr(saved, field))
