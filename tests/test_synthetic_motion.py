"""The embedded dataset: deterministic, and its classes are told apart by frame order only."""

import numpy as np
import pytest
import tensorflow_datasets as tfds
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from scfa_jax.datasets.synthetic_motion import synthetic_motion


def _object_track(clip: np.ndarray) -> np.ndarray:
  """Per frame: centroid x, y and area of the pixels that differ from the clip's median frame."""
  moving = np.abs(clip - np.median(clip, axis=0)).sum(-1) > 60
  yy, xx = np.mgrid[0:clip.shape[1], 0:clip.shape[2]]
  area = moving.sum((1, 2)) + 1e-6
  return np.stack([(moving * xx).sum((1, 2)) / area, (moving * yy).sum((1, 2)) / area, area], -1)


def _features(split_id: int, per_class: int, ordered: bool):
  features, labels = [], []
  for label in range(len(synthetic_motion.CLASS_NAMES)):
    for index in range(per_class):
      rng = np.random.default_rng([123, split_id, label, index])
      num_frames = int(rng.integers(24, 49))
      track = _object_track(synthetic_motion.render_clip(rng, label, frame_size=32, num_frames=num_frames)
                            .astype(np.float32))
      if ordered:  # the start and the end of the clip, in order
        quarter = num_frames // 4
        start, end = track[:quarter].mean(0), track[-quarter:].mean(0)
        features.append(np.concatenate([start, end, end - start]))
      else:  # one frame, as a single-frame classifier sees it
        features.append(track[rng.integers(num_frames)])
      labels.append(label)
  return np.array(features), np.array(labels)


def _accuracy(ordered: bool) -> float:
  x_train, y_train = _features(0, 40, ordered)
  x_test, y_test = _features(1, 20, ordered)
  classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x_train, y_train)
  return classifier.score(x_test, y_test)


@pytest.mark.slow
def test_a_single_frame_is_near_chance_but_frame_order_is_not():
  chance = 1 / len(synthetic_motion.CLASS_NAMES)
  assert _accuracy(ordered=False) < chance + 0.2
  assert _accuracy(ordered=True) > 0.9


def test_build_is_deterministic(tiny_data_dir, tmp_path):
  again = synthetic_motion.SyntheticMotion(config='tiny', data_dir=str(tmp_path))
  again.download_and_prepare()
  first = synthetic_motion.SyntheticMotion(config='tiny', data_dir=tiny_data_dir)
  for split in ('train', 'test'):
    read = lambda b: {ex['video_id']: ex for ex in tfds.as_numpy(
        b.as_dataset(split=split, decoders={'frames': tfds.decode.SkipDecoding()}))}
    a, b = read(first), read(again)
    assert sorted(a) == sorted(b) and len(a) == 6 * (4 if split == 'train' else 2)
    for key in a:
      assert a[key]['label'] == b[key]['label']
      assert list(a[key]['frames']) == list(b[key]['frames'])
