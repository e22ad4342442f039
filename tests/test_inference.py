"""scfa_jax.inference: saved heads, Predictor parity with evaluation, and bad input (API level)."""

import dataclasses
import json
import os
import shutil

import cv2
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from scfa_jax import datasets
from scfa_jax import errors
from scfa_jax.datasets import common
from scfa_jax.evaluation import heads as heads_lib
from scfa_jax.evaluation import knn
from scfa_jax.evaluation import linear_probe
from scfa_jax.inference import Predictor
from scfa_jax.inference import identity
from scfa_jax.inference import index
from scfa_jax.inference import predictor as predictor_lib
from scfa_jax.inference import timeline
from scfa_jax.inference import video
from scfa_jax.training import checkpointing

# results.json protocol of each head
PROTOCOL = {'finetune': 'finetune', 'probe': 'linear_probe', 'knn': 'knn'}


@pytest.mark.parametrize('num_classes', [2, 4])
def test_saved_probe_reproduces_sklearn_predict_proba(num_classes):
  rng = np.random.default_rng(num_classes)
  labels = np.arange(60) % num_classes
  features = rng.normal(size=(60, 7)) + labels[:, None] * 0.3
  features[:, 3] = 1.5  # a constant feature: sklearn's scale_ is 1 there
  fitted = linear_probe.fit(features, labels)
  probe = heads_lib.LinearProbe.from_sklearn(fitted)
  queries = rng.normal(size=(25, 7))
  np.testing.assert_allclose(probe.predict_proba(queries, num_classes), fitted.predict_proba(queries), atol=1e-6)


@pytest.fixture(scope='module')
def predictor(evaluated_workdir):
  return Predictor.from_workdir(evaluated_workdir[1])


@pytest.fixture(scope='module')
def as_stored(evaluated_workdir):
  """A predictor for frames already decoded from the prepared dataset: no second JPEG round trip."""
  return Predictor.from_workdir(evaluated_workdir[1], storage_round_trip=False)


def _split(config, name):
  """(decoded stored frames of every video, labels, ids) of a prepared split, in evaluation's order."""
  builder = datasets.get_builder(config.data)
  ds = builder.as_dataset(split=name, shuffle_files=False, decoders={'frames': __import__(
      'tensorflow_datasets').decode.SkipDecoding()})
  videos, labels, ids = [], [], []
  for ex in ds.as_numpy_iterator():
    videos.append(np.stack([tf.io.decode_image(f, channels=3).numpy() for f in ex['frames']]))
    labels.append(int(ex['label']))
    ids.append(ex['video_id'].decode())
  return videos, np.asarray(labels), ids


def test_heads_are_plain_files_that_reproduce_evaluation(evaluated_workdir):
  config, workdir, _ = evaluated_workdir
  directory = heads_lib.heads_dir(workdir)
  for name in (heads_lib.PROBE_FILE, heads_lib.MEMORY_FILE):
    with np.load(os.path.join(directory, name), allow_pickle=False) as z:  # no pickle inside
      assert all(z[k].dtype != object for k in z.files)
  with open(os.path.join(directory, heads_lib.META_FILE)) as f:
    meta = json.load(f)
  assert meta['finetune_dir'].startswith('finetune/') and meta['num_test_clips'] == 2
  heads = heads_lib.load(workdir)
  _, train_labels, train_ids = _split(config, 'train')
  np.testing.assert_array_equal(heads.memory.labels, train_labels)
  assert list(heads.memory.clip_ids) == train_ids
  refit = linear_probe.fit(heads.memory.features, heads.memory.labels, c=config.eval.linear_probe_c,
                           max_iter=config.eval.linear_probe_max_iter)
  np.testing.assert_allclose(heads.probe.predict_proba(heads.memory.features, 6),
                             refit.predict_proba(heads.memory.features), atol=1e-6)


def test_classify_gives_evaluations_class_for_every_prepared_test_video(evaluated_workdir, as_stored):
  predictor = as_stored
  config, workdir, _ = evaluated_workdir
  with open(os.path.join(workdir, 'results.json')) as f:  # the last evaluation's, which wrote the heads
    results = json.load(f)
  from scfa_jax.evaluation import embeddings  # pylint: disable=g-import-not-at-top
  from scfa_jax.training import parallel, steps  # pylint: disable=g-import-not-at-top
  import functools  # pylint: disable=g-import-not-at-top
  videos, labels, _ = _split(config, 'test')
  assert predictor.available_heads() == ['finetune', 'probe', 'knn']
  # Evaluation's own features of the test split (2 views, averaged) and its probe's probabilities.
  p_embed = parallel.pmap_step(functools.partial(steps.embed_step, preprocessing_mode='imagenet'), donate_state=False)
  encoder = predictor.encoder
  state = parallel.replicate(predictor_lib.InferenceState(params=encoder.variables['params'],
                                                          batch_stats=encoder.variables['batch_stats'],
                                                          apply_fn=encoder.model.apply))
  builder = datasets.get_builder(config.data)
  test = embeddings.extract(p_embed, state, builder, 'test', config.data, local_batch_size=8, num_clips=2)
  expected = linear_probe.fit(predictor.heads.memory.features, predictor.heads.memory.labels).predict_proba(
      test['features'].mean(axis=1))
  np.testing.assert_allclose(predictor.embed(videos), test['features'].mean(axis=1), atol=1e-5)
  got = predictor.classify(videos, top_k=6, head='probe')
  names = predictor.class_names
  probabilities = np.asarray([[dict(zip(p.classes, p.probabilities))[n] for n in names] for p in got])
  np.testing.assert_array_equal(probabilities.argmax(1), expected.argmax(1))
  np.testing.assert_allclose(probabilities, expected, atol=1e-5)
  # The kNN head: evaluation's similarity-weighted vote on the same averaged features, normalised per video.
  memory = predictor.heads.memory
  votes = knn.knn_scores(memory.features, memory.labels, test['features'].mean(axis=1), k=memory.k,
                         num_classes=6, temperature=memory.temperature)
  got = predictor.classify(videos, top_k=6, head='knn')
  knn_probabilities = np.asarray([[dict(zip(p.classes, p.probabilities))[n] for n in names] for p in got])
  np.testing.assert_allclose(knn_probabilities.sum(axis=1), 1.0, atol=1e-6)
  np.testing.assert_allclose(knn_probabilities, votes / votes.sum(axis=1, keepdims=True), atol=1e-5)
  for head, protocol in PROTOCOL.items():  # every head: evaluation's confusion matrix, video for video
    predicted = [names.index(p.classes[0]) for p in predictor.classify(videos, top_k=1, head=head)]
    matrix = np.zeros((6, 6), int)
    np.add.at(matrix, (labels, predicted), 1)
    assert matrix.tolist() == results['protocols'][protocol]['averaged']['confusion_matrix'], head


def test_source_videos_get_evaluations_grids_and_classes(evaluated_workdir, predictor, as_stored, tmp_path):
  """Clips rendered again (never JPEG-stored) and written losslessly: inference stores them as the builder did."""
  from scfa_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import views  # pylint: disable=g-import-not-at-top
  config, _, _ = evaluated_workdir
  builder = datasets.get_builder(config.data)
  stored, _, ids = _split(config, 'test')
  paths, raws = [], []
  for frames, clip_id in zip(stored, ids):
    name, _, index_ = clip_id.rsplit('_', 2)
    label = builder.info.features['label'].str2int(name)
    rng = np.random.default_rng([builder.builder_config.seed, 1, label, int(index_)])
    num = int(rng.integers(builder.builder_config.min_frames, builder.builder_config.max_frames + 1))
    raws.append(builder.render_clip(rng, label, frame_size=builder.builder_config.frame_size, num_frames=num))
    stored_again = [tf.io.decode_image(f, channels=3).numpy() for f in common.encode_frames(raws[-1], shorter_side=0)]
    np.testing.assert_array_equal(np.stack(stored_again), frames)  # the same clip, before its JPEG storage
    paths.append(str(tmp_path / f'{clip_id}.avi'))
    writer = cv2.VideoWriter(paths[-1], cv2.VideoWriter_fourcc(*'FFV1'), 25, raws[-1].shape[2:0:-1])
    for frame in raws[-1]:
      writer.write(frame[..., ::-1])
    writer.release()
  # Evaluation's grids of the prepared test split (2 test clips a video), in order.
  dataset, _ = input_pipeline.create_eval_dataset(builder, 'test', config.data, local_batch_size=len(ids),
                                                  num_clips=2, process_index=0, num_processes=1)
  expected = next(iter(dataset.as_numpy_iterator()))['image']
  got = np.stack([item.grids for item in views.items(paths, config, predictor.views,
                                                     jpeg_quality=predictor.jpeg_quality)])
  assert predictor.jpeg_quality == common.DEFAULT_JPEG_QUALITY and as_stored.jpeg_quality is None
  np.testing.assert_array_equal(got, expected)  # bit for bit: the builder's encoder, the pipeline's decoder
  unstored = np.stack([item.grids for item in views.items(paths, config, predictor.views)])
  assert np.abs(unstored.astype(int) - expected).max() > 0  # without the round trip the JPEG noise is missing
  evaluation = [p.classes[0] for p in as_stored.classify(stored, top_k=1, head='probe')]
  assert [p.classes[0] for p in predictor.classify(paths, top_k=1, head='probe')] == evaluation
  traced = predictor.tiler.make.experimental_get_tracing_count()
  assert [p.classes[0] for p in predictor.classify(raws, top_k=1, head='probe')] == evaluation  # raw arrays too
  np.testing.assert_allclose(predictor.embed(paths), as_stored.embed(stored), atol=1e-5)
  # One tiler per predictor, traced by its first call and reused (re-tracing costs 1-7 s a call).
  assert predictor.tiler.make.experimental_get_tracing_count() == traced >= 1


@pytest.mark.parametrize('name', ['ucf101_manual', 'synthetic_motion'])
def test_frame_arrays_are_stored_byte_for_byte_as_their_builder_stores_them(name):
  """A real-video builder squashes every frame to S x S (small ones too); a generated one keeps its size."""
  config = ml_collections.ConfigDict({'name': name, 'shorter_side': 0})
  stored = video.storage(config)
  rng = np.random.default_rng(0)
  for frames in (rng.integers(0, 255, (4, 30, 40, 3), np.uint8), rng.integers(0, 255, (4, 90, 120, 3), np.uint8)):
    if name == 'synthetic_motion' and frames.shape[1] <= 56:  # generated datasets store frames as rendered
      expected = common.encode_frames(frames, shorter_side=0)
    else:  # video_io's shrink as decoded, then make_example's squash to S x S (larger generated ones: for speed)
      expected = common.encode_frames([common.resize_shorter_side(f, 56) for f in frames], shorter_side=56)
    assert video.store(video.read(frames, stored), stored.jpeg_quality) == expected
  assert video.store(frames, None) is frames  # no round trip: the frames as read


def test_awkward_frames_are_read_like_training_reads_them(predictor):
  rng = np.random.default_rng(0)
  short = rng.integers(0, 255, (2, 24, 24, 3), np.uint8)  # fewer frames than the grid: frames repeat
  grey = rng.integers(0, 255, (9, 30, 40), np.uint8)
  large = rng.integers(0, 255, (5, 1200, 1600, 3), np.uint8)  # shrunk as builders store frames
  out = predictor.classify([short, grey, large], top_k=2)
  assert [len(p.classes) for p in out] == [2, 2, 2] and all(p.head == 'finetune' for p in out)
  np.testing.assert_allclose(predictor.embed([grey]), predictor.embed([np.repeat(grey[..., None], 3, -1)]))
  assert video.read(large, video.storage(predictor.config.data)).shape == (5, 56, 56, 3)


def test_bad_videos_raise_one_line_errors_naming_the_file(predictor, tmp_path):
  text = tmp_path / 'notes.mp4'
  text.write_text('not a video')
  for bad, match in ((str(text), 'notes.mp4'), (str(tmp_path / 'missing.avi'), 'missing.avi'),
                     (np.zeros((4, 8, 8, 3), np.float32), 'uint8'), (np.zeros((0, 8, 8, 3), np.uint8), 'T >= 1')):
    with pytest.raises(video.BadVideoError, match=match) as caught:
      predictor.embed([bad])
    assert '\n' not in str(caught.value)
  with pytest.raises(video.NoVideosError, match='no video file'):
    video.find_videos([str(tmp_path / 'empty_dir')] if os.makedirs(tmp_path / 'empty_dir') is None else [])
  with pytest.raises(TypeError, match='list'):
    predictor.classify(str(text))


def test_workdirs_that_cannot_predict_say_why(evaluated_workdir, tmp_path):
  _, workdir, _ = evaluated_workdir
  with pytest.raises(errors.UserError, match='no such workdir'):
    Predictor.from_workdir(str(tmp_path / 'nowhere'))
  old = str(tmp_path / 'old')  # evaluated before heads were saved
  shutil.copytree(workdir, old, ignore=shutil.ignore_patterns('heads', 'finetune'))
  before = Predictor.from_workdir(old)
  assert before.embed([np.zeros((4, 24, 24, 3), np.uint8)]).shape == (1, 32)
  with pytest.raises(heads_lib.NoHeadsError, match=f'--mode=eval --workdir={old}'):
    before.classify([np.zeros((4, 24, 24, 3), np.uint8)])
  checkpoints = os.path.join(old, 'checkpoints')
  steps = sorted(int(s) for s in os.listdir(checkpoints) if s.isdigit())
  for root, _, files in os.walk(os.path.join(checkpoints, str(steps[-1]))):
    for name in files:  # the newest checkpoint damaged: the one before is used, nothing is moved
      with open(os.path.join(root, name), 'wb') as f:
        f.write(b'damaged')
  assert Predictor.from_workdir(old).encoder.step == steps[-2]
  assert sorted(int(s) for s in os.listdir(checkpoints) if s.isdigit()) == steps
  with open(os.path.join(old, 'config.json')) as f:
    config = json.load(f)
  config['model']['width'] = 8  # another model's config beside these checkpoints
  with open(os.path.join(old, 'config.json'), 'w') as f:
    json.dump(config, f)
  with pytest.raises(checkpointing.CheckpointMismatchError, match='another model'):
    Predictor.from_workdir(old)
  shutil.rmtree(os.path.join(old, 'checkpoints'))
  with pytest.raises(errors.UserError, match='No checkpoint'):
    Predictor.from_workdir(old)


def test_exact_chunked_search_and_resumable_embedding_file(tmp_path):
  rng = np.random.default_rng(1)
  memory, queries = rng.normal(size=(50, 6)), rng.normal(size=(3, 6))
  ids, sims = index.nearest(memory, queries, k=4, chunk=7)
  brute = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (
      memory / np.linalg.norm(memory, axis=1, keepdims=True)).T
  np.testing.assert_array_equal(ids, np.argsort(-brute, axis=1)[:, :4])
  np.testing.assert_allclose(sims, np.sort(brute, axis=1)[:, ::-1][:, :4])
  path = str(tmp_path / 'e.csv')
  model = identity.Identity(workdir='/w', step=6, config='abc', views='1 clips + 0 local', dim=6)
  writer = index.Writer(path, model)
  writer.write('a.mp4', '', memory[0].astype(np.float32))
  writer.write('b, with a comma.mp4', '', memory[1].astype(np.float32))
  writer.close()
  with open(path, 'a') as f:
    f.write('c.mp4,,0.1,0.2')  # killed mid-line
  assert index.finished(path) == {'a.mp4', 'b, with a comma.mp4'}
  loaded = index.load(path)
  assert loaded.names == ['a.mp4', 'b, with a comma.mp4'] and loaded.identity == model
  np.testing.assert_array_equal(loaded.features, memory[:2].astype(np.float32))  # float32 round-trips exactly
  with pytest.raises(errors.BadFilesError, match='6 dims'):
    index.Writer(path, dataclasses.replace(model, dim=8))
  index.Writer(path, model).close()  # the same model: the cut-off line is dropped, whole rows kept
  assert open(path).read().endswith('\n') and index.finished(path) == {'a.mp4', 'b, with a comma.mp4'}
  blocker = tmp_path / 'a_file'
  blocker.write_text('x')  # an output path under a file cannot be written (root ignores permission bits)
  with pytest.raises(errors.BadFilesError, match='writable --out'):
    index.Writer(str(blocker / 'e.csv'), model)
  from scfa_jax.inference import export  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.BadFilesError, match='writable --out'):
    export._check_writable(str(blocker / 'model'))  # pylint: disable=protected-access


def test_timeline_windows_cover_the_video():
  assert timeline.windows(100, 10.0, 4.0, 2.0) == [(0, 40), (20, 60), (40, 80), (60, 100)]
  assert timeline.windows(105, 10.0, 4.0, 3.0)[-1] == (65, 105)  # the end is always scored
  assert timeline.windows(12, 10.0, 4.0, 2.0) == [(0, 12)]  # shorter than a window: one window
  with pytest.raises(errors.ConfigError, match='window_s'):
    timeline.windows(10, 10.0, 0.0, 1.0)


@pytest.mark.parametrize('num_clips,local_views', [(1, 0), (3, 0), (2, 2)])
def test_decoded_frames_get_evaluations_views(tiny_config, num_clips, local_views):
  """Frames decoded by inference and frames stored by a dataset go through the same views (multi-scale too)."""
  from scfa_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import views  # pylint: disable=g-import-not-at-top
  tiny_config.eval.update(num_test_clips=num_clips, local_views=local_views)
  tiny_config.data.update(local_grid=4, local_frames_stride=2)
  frames = np.random.default_rng(0).integers(0, 255, (13, 20, 20, 3), np.uint8)
  stored = tf.constant([tf.io.encode_png(f).numpy() for f in frames])  # lossless, as a dataset could store them
  expected = input_pipeline.preprocess_eval({'frames': stored, 'label': 0}, data_config=tiny_config.data,
                                            num_clips=num_clips, num_local_views=local_views)['image']
  spec = views.ViewSpec.from_config(tiny_config)
  got = views.grid_fn(tiny_config.data, spec)(tf.constant(frames)).numpy()
  assert got.shape == (num_clips + local_views, 16, 16, 3)
  np.testing.assert_array_equal(got, np.reshape(expected, got.shape))
