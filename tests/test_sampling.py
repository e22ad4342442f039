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


def _seeds(count: int) -> tf.data.Dataset:
  """``_seed(s)`` for s < count, as a dataset: a function mapped over it runs as one graph, not op by op."""
  return tf.data.Dataset.range(count).map(lambda s: tf.stack([s, tf.constant(7, tf.int64)]))


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
  for indices in _seeds(300).map(lambda seed: sampling.random_sorted_indices(num_frames, N, seed)).as_numpy_iterator():
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


# ----------------------------------------------------------------------------- temporal spans (data.view_span)


@pytest.mark.parametrize('method', sampling.METHODS)
def test_the_whole_span_is_the_plain_sampling(method):
  for s in range(5):
    np.testing.assert_array_equal(sampling.spanned_indices(100, N, method, _seed(s), (1.0, 1.0)).numpy(),
                                  sampling.sample_indices(100, N, method, _seed(s)).numpy())


@pytest.mark.parametrize('method', sampling.METHODS)
@pytest.mark.parametrize('span', [(0.5, 0.5), (0.3, 0.8)])
def test_a_view_covers_a_stretch_of_the_drawn_length_at_a_random_start(method, span):
  num_frames = 200
  draws = _seeds(120).map(lambda seed: (*sampling.span_window(num_frames, N, span, seed),
                                         sampling.spanned_indices(num_frames, N, method, seed, span)))
  starts, reaches = [], []
  for start, length, indices in draws.as_numpy_iterator():
    assert span[0] * num_frames - 1 <= length <= span[1] * num_frames + 1 and 0 <= start <= num_frames - length
    assert indices.shape == (N,) and np.all(np.diff(indices) > 0)  # in order, distinct: the stretch holds >= N frames
    assert start <= indices.min() and indices.max() < start + length  # within one stretch, not the whole video
    starts.append(indices.min())
    reaches.append(indices.max())
  # Stretches start anywhere they fit: near the first frame and near the last possible one.
  assert min(starts) < 0.1 * num_frames and max(reaches) > 0.9 * num_frames
  if method == 'segment':  # the sampling still spreads over its own stretch (one frame per 16th of it)
    assert np.mean(np.array(reaches) - np.array(starts)) > 0.8 * np.mean(span) * num_frames


def test_two_views_start_a_random_gap_apart_small_gaps_likeliest():
  """Independent uniform starts: the gap's density falls with its size (CVRL's decreasing temporal distance)."""
  num_frames, span = 100, (0.5, 0.5)
  starts = np.concatenate(list(_seeds(4000).map(lambda seed: sampling.span_window(num_frames, N, span, seed)[0])
                               .batch(1000).as_numpy_iterator()))
  gaps = np.abs(starts[:2000] - starts[2000:])
  counts = np.histogram(gaps, bins=[0, 10, 20, 30, 40, 51])[0]
  assert np.all(np.diff(counts) < 0), counts


@pytest.mark.parametrize('num_frames', [1, 5, 16, 20])
def test_a_short_video_keeps_at_least_a_views_worth_of_frames(num_frames):
  draws = _seeds(20).map(lambda seed: (*sampling.span_window(num_frames, N, (0.1, 0.2), seed),
                                        sampling.spanned_indices(num_frames, N, 'segment', seed, (0.1, 0.2))))
  for start, length, indices in draws.as_numpy_iterator():
    assert length == min(N, num_frames) or length >= N
    assert set(indices.tolist()) == set(range(start, start + length))  # every frame of the stretch, in order
    assert np.all(np.diff(indices) >= 0)
