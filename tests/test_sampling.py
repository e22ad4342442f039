"""Temporal sampling: coverage, order, distinctness, short videos, determinism."""

import numpy as np
import pytest
import tensorflow as tf

from scfa_jax.data import sampling

N = 16  # frames per view in the paper's 4x4 grid
LENGTHS = [16, 17, 31, 100, 301]
SHORT = [1, 2, 5, 15]


def _seed(i: int) -> tf.Tensor:
  return tf.constant([i, 7], tf.int64)


def _segments(num_frames: int, num_samples: int = N) -> list[tuple[float, float]]:
  edges = np.arange(num_samples + 1) * num_frames / num_samples
  return list(zip(edges[:-1], edges[1:]))


def _assert_one_per_segment(indices: np.ndarray, num_frames: int) -> None:
  """Index i lies in segment i of N equal segments: together they span the whole video."""
  for i, (lo, hi) in zip(indices, _segments(num_frames, len(indices))):
    assert np.floor(lo) <= i < hi, (indices, num_frames)


@pytest.mark.parametrize('num_frames', LENGTHS)
def test_segment_covers_the_whole_video_and_varies_with_the_seed(num_frames):
  draws = [sampling.segment_indices(num_frames, N, _seed(s)).numpy() for s in range(20)]
  for indices in draws:
    assert indices.dtype == np.int32 and indices.shape == (N,)
    _assert_one_per_segment(indices, num_frames)
    assert np.all(np.diff(indices) > 0)  # distinct and in temporal order
  if num_frames >= 2 * N:
    assert len({tuple(d) for d in draws}) > 15  # different views
  np.testing.assert_array_equal(draws[3], sampling.segment_indices(num_frames, N, _seed(3)).numpy())


@pytest.mark.parametrize('num_frames', LENGTHS)
def test_uniform_is_deterministic_evenly_spaced_and_covers_the_video(num_frames):
  indices = sampling.uniform_indices(num_frames, N).numpy()
  _assert_one_per_segment(indices, num_frames)
  assert np.all(np.diff(indices) > 0)
  # Centres of the segments: gaps differ by at most one frame.
  assert np.ptp(np.diff(indices)) <= 1
  seeded = sampling.sample_indices(num_frames, N, 'uniform', _seed(1)).numpy()
  np.testing.assert_array_equal(indices, seeded)


@pytest.mark.parametrize('num_frames', LENGTHS)
def test_random_sorted_is_sorted_distinct_and_reaches_every_frame(num_frames):
  seen = set()
  for s in range(300):
    indices = sampling.random_sorted_indices(num_frames, N, _seed(s)).numpy()
    assert indices.shape == (N,) and indices.min() >= 0 and indices.max() < num_frames
    assert np.all(np.diff(indices) > 0)  # sorted, distinct
    seen.update(indices.tolist())
  assert seen == set(range(num_frames))  # not confined to a pattern (e.g. one per segment)


@pytest.mark.parametrize('method', sampling.METHODS)
@pytest.mark.parametrize('num_frames', SHORT)
def test_short_videos_repeat_frames_in_order(method, num_frames):
  for s in range(10):
    indices = sampling.sample_indices(tf.constant(num_frames), N, method, _seed(s)).numpy()
    assert indices.shape == (N,)
    assert indices.min() >= 0 and indices.max() < num_frames
    assert np.all(np.diff(indices) >= 0)  # repeats, but never backwards in time
    assert set(indices.tolist()) == set(range(num_frames))  # every frame shows up


@pytest.mark.parametrize('num_frames', [3, 16, 40, 100])
@pytest.mark.parametrize('num_clips', [1, 2, 5])
def test_multi_clip_views_are_deterministic_and_distinct_where_possible(num_frames, num_clips):
  clips = sampling.multi_clip_indices(num_frames, N, num_clips).numpy()
  assert clips.shape == (num_clips, N)
  np.testing.assert_array_equal(clips, sampling.multi_clip_indices(tf.constant(num_frames), N, num_clips).numpy())
  for row in clips:
    assert row.min() >= 0 and row.max() < num_frames and np.all(np.diff(row) >= 0)
    if num_frames >= N:
      _assert_one_per_segment(row, num_frames)
  if num_frames >= N * num_clips:  # every segment holds a frame per clip
    assert len({tuple(row) for row in clips}) == num_clips
    assert np.all(np.diff(clips, axis=0) > 0)  # clip k+1 is later within every segment
  if num_clips == 1:
    np.testing.assert_array_equal(clips[0], sampling.uniform_indices(num_frames, N).numpy())


def test_unknown_method_and_bad_clip_count_raise():
  with pytest.raises(ValueError, match='Unknown frame sampling'):
    sampling.sample_indices(10, N, 'dense', _seed(0))
  with pytest.raises(ValueError, match='num_clips'):
    sampling.multi_clip_indices(10, N, 0)


def test_sampling_runs_inside_tf_data_with_dynamic_lengths():
  lengths = tf.data.Dataset.from_tensor_slices(tf.constant([1, 7, 16, 250], tf.int32))
  ds = lengths.map(lambda n: tf.stack([sampling.sample_indices(n, N, m, _seed(0)) for m in sampling.METHODS]))
  assert ds.element_spec.shape == (len(sampling.METHODS), N)  # static: the view graph unrolls per frame
  for n, indices in zip([1, 7, 16, 250], ds.as_numpy_iterator()):
    assert indices.shape == (len(sampling.METHODS), N)
    assert indices.min() >= 0 and indices.max() < n
