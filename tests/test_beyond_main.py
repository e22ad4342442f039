"""The beyond-the-paper options through the real entry point, shrunk to a tiny synthetic_detail run."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_main(tmp_path, config: str, *overrides: str) -> tuple[subprocess.CompletedProcess, dict]:
  """``python -m scfa_jax.main`` with ``config`` shrunk (tiny synthetic_detail, ResNet-10 width 4, 2 steps of 8
  videos, 8 px tiles, one test view, no retrieval or plots) plus ``overrides``; returns the process and results."""
  workdir = tmp_path / 'run'
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), JAX_PLATFORMS='cpu')
  args = [f'--config={config}', f'--workdir={workdir}', '--config.data.name=synthetic_detail',
          '--config.data.builder_config=tiny', f'--config.data.data_dir={tmp_path / "tfds"}',
          '--config.data.tile_size=8', '--config.model.depth=10', '--config.model.width=4',
          '--config.train.batch_size=8', '--config.train.max_steps=2', '--config.eval.num_test_clips=1',
          '--config.eval.retrieval_ks=()', '--config.eval.plots=False', *overrides]
  proc = subprocess.run([sys.executable, '-m', 'scfa_jax.main', *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (workdir / 'checkpoints' / '2').is_dir()
  with open(workdir / 'results.json') as f:
    return proc, json.load(f)


@pytest.mark.slow(seconds=19)
def test_multiscale_balanced_run_on_synthetic_detail(tmp_path):
  """configs/demo_multiscale.py shrunk: 4x4 grids of 8 px beside 2x2 local grids of 16 px, 2 classes x 4 videos."""
  proc, results = _run_main(tmp_path, 'configs/demo_multiscale.py', '--config.data.balanced_batches_per_class=4',
                            '--config.eval.local_views=1')
  assert results['num_classes'] == 6 and results['num_test'] == 12
  # eval.local_views=1: the averaged entries are the global grid and one local view, averaged.
  assert results['settings']['local_views'] == 1
  assert results['protocols']['linear_probe']['averaged'] is not None
  assert results['compute']['images_per_video'] == {'single_view': 1, 'averaged': 2}
  assert '1+1 local views' in proc.stdout + proc.stderr


@pytest.mark.slow(seconds=19)
def test_tsn_run_reports_its_classifier_and_the_compute_of_its_frames(tmp_path):
  """configs/demo_tsn.py shrunk (2x4 frames of 8 px, 2 steps) through main: trained, scored, costed per video."""
  _, results = _run_main(tmp_path, 'configs/demo_tsn.py')
  assert results['settings']['per_frame'] is True
  assert results['protocols']['classifier']['single_view']['top1'] is not None  # the averaged frame scores
  assert results['compute']['image_shape'] == [16, 32, 3]  # the 8 frames of one video in one 2x4 image
  assert results['compute']['forward_gflops_per_video']['single_view'] > 0
