"""Data parallelism: 8 devices must compute exactly what 1 device computes on the same global batch."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import host_devices

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.parametrize('sync_batch_norm', [True])
def test_eight_devices_match_one(sync_batch_norm):
  env = dict(os.environ, XLA_FLAGS=host_devices(8), JAX_PLATFORMS='cpu',
             PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
  proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'parallel_parity_script.py')],
                        env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  assert result['num_devices'] == 8
  assert result['params_moved'] > 1e-5  # the step really changed the parameters
  assert result['params_max_abs_diff'] < 1e-5, result
  assert result['batch_stats_max_abs_diff'] < 1e-5, result
  assert abs(result['loss_multi'] - result['loss_single']) < 1e-5, result
