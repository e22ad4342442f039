"""SupCon with more than two views per video: 8 devices compute what one device computes on the whole batch."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import host_devices

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.parametrize('num_views', [3, 4])
def test_eight_devices_match_one_device_and_the_formula(num_views):
  env = dict(os.environ, XLA_FLAGS=host_devices(8), JAX_PLATFORMS='cpu',
             PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
  proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'supcon_views_parity_script.py'),
                         str(num_views)], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-4000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  assert result['num_devices'] == 8
  assert abs(result['loss_multi'] - result['loss_single']) < 1e-5, result
  assert abs(result['loss_single'] - result['loss_reference']) < 1e-4, result
  assert result['grad_max_abs'] > 1e-3, result  # the gradient is not trivially zero
  assert result['grad_max_abs_diff'] < 1e-5, result
