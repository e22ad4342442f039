"""The SupCon memory queue: first in, first out; identical on 8 devices and 1; part of an exactly resumed run."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from scfa_jax.training import memory_queue
from tests import resume_runs
from tests.conftest import host_devices

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_enqueue_is_first_in_first_out():
  queue = memory_queue.init(5, 2)
  first = np.arange(6, dtype=np.float32).reshape(3, 2)
  queue = memory_queue.enqueue(queue, first, np.array([0, 1, 2]))
  assert np.asarray(queue['valid']).tolist() == [True, True, True, False, False]
  queue = memory_queue.enqueue(queue, 10 + first[:2], np.array([7, 8]))
  assert np.asarray(queue['labels']).tolist() == [7, 8, 0, 1, 2]  # newest first
  queue = memory_queue.enqueue(queue, 20 + first[:1], np.array([9]))
  assert np.asarray(queue['labels']).tolist() == [9, 7, 8, 0, 1]  # the oldest entry fell off
  np.testing.assert_array_equal(np.asarray(queue['projections'])[0], [20, 21])


@pytest.mark.slow(seconds=26)
def test_queue_is_the_same_on_eight_devices_as_on_one():
  env = dict(os.environ, XLA_FLAGS=host_devices(8), JAX_PLATFORMS='cpu',
             PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
  proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'parallel_parity_script.py'), '--queue_size=80'],
                        env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  assert result['queue_filled'] == 64  # 2 steps x 16 videos x 2 views, of 80 entries
  # Same entries, same order: the unit-length projections differ by float32 sums in another order (1.1e-5 measured
  # at ResNet-10); a wrong or misordered entry differs by ~0.1-1.
  assert result['queue_max_abs_diff'] < 3e-5, result
  assert result['params_max_abs_diff'] < 1e-5, result  # the second step used the queue identically
  assert abs(result['loss_multi'] - result['loss_single']) < 1e-5, result


@pytest.mark.slow(seconds=11)
def test_resume_with_a_queue_continues_exactly(tiny_config, tmp_path):
  tiny_config.loss.queue_size = 24
  a, b = resume_runs.straight_and_resumed(tiny_config, tmp_path)
  assert np.asarray(a['queue']['valid']).all()  # 6 steps x 16 views filled all 24 entries
  for x, y in zip(jax.tree.leaves((a['params'], a['queue'])), jax.tree.leaves((b['params'], b['queue']))):
    np.testing.assert_allclose(x, y, atol=1e-6)
