"""synthetic_detail: one frame cannot tell the direction, 24 px frames cannot tell the texture; both together can."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from scfa_jax import datasets
from scfa_jax.datasets.synthetic_detail import synthetic_detail
from tests.conftest import make_tiny_config
from tests.test_synthetic_motion import _object_track

FRAME_SIZE = 48  # the default config's


def _clips(split_id: int, per_class: int):
  """(rng, label, clip) of rendered clips, balanced over the 6 classes."""
  for label in range(len(synthetic_detail.CLASS_NAMES)):
    for index in range(per_class):
      rng = np.random.default_rng([321, split_id, label, index])
      clip = synthetic_detail.render_clip(rng, label, frame_size=FRAME_SIZE, num_frames=int(rng.integers(24, 49)))
      yield rng, label, clip


def _fit_score(features, split_labels) -> float:
  (x_train, y_train), (x_test, y_test) = [(np.array(f), np.array(y)) for f, y in zip(features, split_labels)]
  classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x_train, y_train)
  return classifier.score(x_test, y_test)


def _direction_accuracy(ordered: bool) -> float:
  features, labels = ([], []), ([], [])
  for split_id, per_class in ((0, 30), (1, 15)):
    for rng, label, clip in _clips(split_id, per_class):
      track = _object_track(clip.astype(np.float32))
      if ordered:  # the start and the end of the clip, in order
        quarter = len(clip) // 4
        start, end = track[:quarter].mean(0), track[-quarter:].mean(0)
        features[split_id].append(np.concatenate([start, end, end - start]))
      else:  # one frame, as a single-frame classifier sees it
        features[split_id].append(track[rng.integers(len(clip))])
      labels[split_id].append(synthetic_detail.class_parts(label)[1])
  return _fit_score(features, labels)


def _texture_features(frame: np.ndarray) -> np.ndarray:
  """Mean absolute difference between horizontal, vertical and diagonal neighbours: fine-texture energy."""
  grey = frame.astype(np.float32).mean(-1)
  diffs = (grey[:, 1:] - grey[:, :-1], grey[1:, :] - grey[:-1, :], grey[1:, 1:] - grey[:-1, :-1])
  return np.log([np.abs(d).mean() for d in diffs])


def _texture_accuracy(size: int) -> float:
  """Texture read from one frame, stored size (48 px) or shrunk as the pipeline shrinks frames to its tiles."""
  features, labels = ([], []), ([], [])
  for split_id, per_class in ((0, 30), (1, 15)):
    for rng, label, clip in _clips(split_id, per_class):
      frame = clip[rng.integers(len(clip))]
      if size != FRAME_SIZE:
        frame = tf.image.resize(frame, (size, size), method='area').numpy()
      features[split_id].append(_texture_features(frame))
      labels[split_id].append(synthetic_detail.class_parts(label)[0])
  return _fit_score(features, labels)


@pytest.mark.slow
def test_a_single_frame_cannot_tell_the_direction_but_frame_order_can():
  assert _direction_accuracy(ordered=False) < 0.5 + 0.15
  assert _direction_accuracy(ordered=True) > 0.9


@pytest.mark.slow(seconds=10)
def test_the_texture_is_visible_at_48_px_and_gone_at_24_px():
  chance = 1 / len(synthetic_detail.TEXTURES)
  assert _texture_accuracy(FRAME_SIZE) > 0.9
  assert _texture_accuracy(24) < chance + 0.15


def test_every_texture_averages_to_the_same_flat_colour_over_2x2_blocks():
  for kind in range(len(synthetic_detail.TEXTURES)):
    pattern = synthetic_detail.texture(kind, 12)
    assert set(np.unique(pattern)) == {-1.0, 1.0}
    np.testing.assert_array_equal(pattern.reshape(6, 2, 6, 2).sum((1, 3)), 0)


def test_tiny_build_is_deterministic_and_registered(tmp_path):
  config = make_tiny_config(str(tmp_path / 'a')).data
  config.name = 'synthetic_detail'
  first = datasets.get_builder(config)  # built on first use, through the registry
  again = synthetic_detail.SyntheticDetail(config='tiny', data_dir=str(tmp_path / 'b'))
  again.download_and_prepare()
  assert first.info.features['label'].names == list(synthetic_detail.CLASS_NAMES)
  for split in ('train', 'test'):
    read = lambda b: {ex['video_id']: ex for ex in tfds.as_numpy(  # noqa: E731
        b.as_dataset(split=split, decoders={'frames': tfds.decode.SkipDecoding()}))}
    a, b = read(first), read(again)
    assert sorted(a) == sorted(b) and len(a) == 6 * (4 if split == 'train' else 2)
    for key in a:
      assert a[key]['label'] == b[key]['label'] and list(a[key]['frames']) == list(b[key]['frames'])


@pytest.mark.parametrize('label', range(6))
def test_frames_have_the_configured_size(label):
  clip = synthetic_detail.render_clip(np.random.default_rng(label), label, frame_size=16, num_frames=8)
  assert clip.shape == (8, 16, 16, 3) and clip.dtype == np.uint8
