"""The beyond-the-paper config files, trained and evaluated as ``main`` runs them, shrunk to tiny synthetic_detail."""

import json

import pytest

from tests.conftest import config_file


def _train_and_evaluate(tmp_path, config: str, **overrides) -> dict:
  """``configs/<config>.py`` shrunk (tiny synthetic_detail, ResNet-10 width 4, 2 steps of 8 videos, 8 px tiles,
  one test view, no retrieval or plots) plus ``overrides`` (``data__x=1`` for data.x), trained and evaluated by
  the library ``main`` calls; returns its results.json."""
  from scfa_jax.training import train  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'run'
  train.train_and_evaluate(config_file(config, {
      'data.name': 'synthetic_detail', 'data.builder_config': 'tiny', 'data.data_dir': str(tmp_path / 'tfds'),
      'data.tile_size': 8, 'model.depth': 10, 'model.width': 4, 'train.batch_size': 8, 'train.max_steps': 2,
      'eval.num_test_clips': 1, 'eval.retrieval_ks': (), 'eval.plots': False,
      **{key.replace('__', '.'): value for key, value in overrides.items()}}), str(workdir))
  assert (workdir / 'checkpoints' / '2').is_dir()
  with open(workdir / 'results.json') as f:
    return json.load(f)


@pytest.mark.slow(seconds=12)
def test_multiscale_balanced_run_on_synthetic_detail(tmp_path, capsys):
  """configs/demo_multiscale.py shrunk: 4x4 grids of 8 px beside 2x2 local grids of 16 px, 2 classes x 4 videos."""
  results = _train_and_evaluate(tmp_path, 'demo_multiscale', data__balanced_batches_per_class=4,
                                eval__local_views=1)
  assert results['num_classes'] == 6 and results['num_test'] == 12
  # eval.local_views=1: the averaged entries are the global grid and one local view, averaged.
  assert results['settings']['local_views'] == 1
  assert results['protocols']['linear_probe']['averaged'] is not None
  assert results['compute']['images_per_video'] == {'single_view': 1, 'averaged': 2}
  assert '1+1 local views' in capsys.readouterr().out  # the summary's column


@pytest.mark.slow(seconds=6)
def test_tsn_run_reports_its_classifier_and_the_compute_of_its_frames(tmp_path):
  """configs/demo_tsn.py shrunk (2x4 frames of 8 px, 2 steps): trained, scored, costed per video."""
  results = _train_and_evaluate(tmp_path, 'demo_tsn')
  assert results['settings']['per_frame'] is True
  assert results['protocols']['classifier']['single_view']['top1'] is not None  # the averaged frame scores
  assert results['compute']['image_shape'] == [16, 32, 3]  # the 8 frames of one video in one 2x4 image
  assert results['compute']['forward_gflops_per_video']['single_view'] > 0
