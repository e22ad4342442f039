"""The robustness report: each perturbation produces what it claims, and evaluate() reports and draws them."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from scfa_jax import datasets
from scfa_jax.data import input_pipeline
from scfa_jax.data import perturbations as pt
from scfa_jax.data import sampling
from scfa_jax.evaluation import evaluate
from scfa_jax.evaluation import schema
from scfa_jax.training import parallel
from scfa_jax.training import train

FRAMES = tf.constant([f'frame{i:02d}' for i in range(20)])


def _ids(frames) -> list[int]:
  return [int(f.decode()[5:]) for f in frames.numpy()]


@pytest.mark.parametrize('fraction,kept', [(0.25, 15), (0.5, 10), (0.99, 1)])
def test_drop_frames_keeps_the_rest_in_order(fraction, kept):
  ids = _ids(pt.drop_frames(FRAMES, fraction))
  assert len(ids) == kept and ids == sorted(set(ids)) and set(ids) <= set(range(20))
  assert ids == _ids(pt.drop_frames(FRAMES, fraction))  # the same video is always perturbed the same way


@pytest.mark.parametrize('n', [4, 5, 6, 9, 10, 13])
def test_drop_frames_rounds_the_kept_count_half_up(n):
  """25% of 6 frames keeps 5 and of 10 keeps 8 (round-half-to-even kept 4 and 8: the rule changed with n)."""
  video = tf.constant([f'frame{i:02d}' for i in range(n)])
  assert len(_ids(pt.drop_frames(video, 0.25))) == int(np.floor(n * 0.75 + 0.5))
  assert len(_ids(pt.drop_frames(video, 0.5))) == int(np.floor(n * 0.5 + 0.5))


@pytest.mark.parametrize('n', [1, 2, 3, 4, 5, 6, 9, 13, 20])
def test_speed_2x_keeps_every_other_frame_the_last_one_included(n):
  """n = 5 gave [0, 2]: round-half-to-even of 2.5 frames dropped frame 4 (and so the 2x row's last frame)."""
  video = tf.constant([f'frame{i:02d}' for i in range(n)])
  assert _ids(pt.change_speed(video, 2.0)) == list(range(0, n, 2))
  assert _ids(pt.change_speed(video, 3.0)) == list(range(0, n, 3))
  assert _ids(pt.change_speed(video, 0.5)) == [i // 2 for i in range(2 * n)]
  half = min(n // 2, n - 1)
  assert _ids(pt.change_speed_halfway(video, 2.0)) == list(range(half)) + list(range(half, n, 2))


def test_speed_changes_the_frame_rate():
  assert _ids(pt.change_speed(FRAMES, 2.0)) == list(range(0, 20, 2))
  assert _ids(pt.change_speed(FRAMES, 0.5)) == [i // 2 for i in range(40)]


def test_speed_change_halfway_keeps_the_first_half_and_retimes_the_second():
  assert _ids(pt.change_speed_halfway(FRAMES, 2.0)) == list(range(10)) + list(range(10, 20, 2))
  assert _ids(pt.change_speed_halfway(FRAMES, 0.5)) == list(range(10)) + [10 + i // 2 for i in range(20)]


def _sampled(frames, num_samples: int = 16) -> list[int]:
  """The frames evaluation's uniform sampling takes from a (perturbed) video."""
  return _ids(tf.gather(frames, sampling.uniform_indices(tf.shape(frames)[0], num_samples)))


@pytest.mark.parametrize('setting', ['0.5x 2nd half', '2x 2nd half'])
def test_the_speed_rows_change_the_frames_evaluation_samples(setting):
  """Sampling evenly over the whole video undid the old global speed change; the report's rows must not be a no-op."""
  video = tf.constant([f'frame{i:02d}' for i in range(64)])
  speed = next(p for p in pt.standard_perturbations() if (p.name, p.setting) == ('speed', setting))
  clean, perturbed = _sampled(video), _sampled(speed.frames(video))
  assert sum(a != b for a, b in zip(clean, perturbed)) >= 4, (clean, perturbed)
  in_first_half = sum(i < 32 for i in perturbed)
  assert in_first_half == (5 if setting.startswith('0.5x') else 11), perturbed  # 1/3 or 2/3 of the 16 frames


def test_cut_segment_may_start_anywhere_the_end_included():
  """8-frame videos, a 2-frame cut: every start 0..6 occurs, so the last two frames can be cut too."""
  starts = set()
  for k in range(300):  # the cut's position is seeded by the video's content
    video = tf.constant([f'video{k}-frame{i}' for i in range(8)])
    kept = [f.decode() for f in pt.cut_segment(video, 0.25).numpy()]
    removed = [i for i in range(8) if f'video{k}-frame{i}' not in kept]
    assert len(removed) == 2 and removed[1] == removed[0] + 1
    starts.add(removed[0])
  assert starts == set(range(7)), sorted(starts)


def test_cut_segment_removes_one_contiguous_run():
  ids = _ids(pt.cut_segment(FRAMES, 0.25))
  assert len(ids) == 15 and ids == sorted(ids)
  removed = sorted(set(range(20)) - set(ids))
  assert removed == list(range(removed[0], removed[0] + 5))


def test_photometric_perturbations():
  image = tf.constant(np.full((2, 4, 4, 3), 100, np.uint8))
  assert int(tf.reduce_max(pt.shift_brightness(image, 0.3))) in (176, 177)
  assert int(tf.reduce_max(pt.shift_brightness(image, 0.9))) == 255  # clipped, not wrapped
  ramp = tf.constant(np.arange(48, dtype=np.uint8).reshape(1, 4, 4, 3) * 4)
  halved = pt.scale_contrast(ramp, 0.5).numpy().astype(float)
  original = ramp.numpy().astype(float)
  np.testing.assert_allclose(halved - halved.mean(), 0.5 * (original - original.mean()), atol=1.0)
  warm = pt.colour_cast(image, 0.2).numpy()[0, 0, 0]
  assert tuple(warm) == (120, 100, 80)


def test_the_eval_pipeline_applies_a_perturbation_to_every_grid(tiny_config):
  builder = datasets.get_builder(tiny_config.data)
  brighter = next(p for p in pt.standard_perturbations() if p.setting == '+30%')

  def first_batch(perturbation):
    dataset, _ = input_pipeline.create_eval_dataset(builder, 'test', tiny_config.data, local_batch_size=4,
                                                    perturbation=perturbation)
    return next(dataset.as_numpy_iterator())['image'].astype(np.int32)

  clean, perturbed = first_batch(None), first_batch(brighter)
  assert np.abs(perturbed - np.minimum(clean + 76.5, 255)).max() <= 1
  for speed in (p for p in pt.standard_perturbations() if p.name == 'speed'):  # the grids themselves change
    assert (first_batch(speed) != clean).any(axis=(1, 2, 3)).all(), speed.setting


@pytest.mark.slow
def test_evaluate_writes_the_robustness_report_and_figure(tiny_config, tmp_path):
  tiny_config.eval.update(robustness=True, num_test_clips=1, plots=True)
  workdir = str(tmp_path / 'run')
  os.makedirs(workdir)
  run = train._set_up(tiny_config, workdir, mode='train', allow_config_change=False)  # pylint: disable=protected-access
  results = evaluate.evaluate(parallel.replicate(run.state), run.builder, tiny_config,
                              preprocessing_mode=run.preprocessing_mode, workdir=workdir, step=0)
  run.manager.close()
  schema.validate(results)
  expected = {(p.name, p.setting) for p in pt.standard_perturbations()}
  got = {(name, setting) for name, settings in results['robustness'].items() for setting in settings}
  assert got == expected
  for settings in results['robustness'].values():
    for scores in settings.values():
      assert 0.0 <= scores['linear_probe'] <= 1.0 and 0.0 <= scores['knn'] <= 1.0
  assert results['figures']['robustness'] == 'robustness.png'
  with Image.open(os.path.join(workdir, 'robustness.png')) as image:
    image.verify()
