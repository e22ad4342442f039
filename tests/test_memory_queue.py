"""The SupCon memory queue: first in, first out; part of an exactly resumed run (8 devices = 1: test_parallel.py)."""


import jax
import numpy as np
import pytest

from scfa_jax.training import memory_queue
from tests import resume_runs

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


@pytest.mark.slow(seconds=11)
def test_resume_with_a_queue_continues_exactly(tiny_config, tmp_path):
  tiny_config.loss.queue_size = 24
  a, b = resume_runs.straight_and_resumed(tiny_config, tmp_path)
  assert np.asarray(a['queue']['valid']).all()  # 6 steps x 16 views filled all 24 entries
  for x, y in zip(jax.tree.leaves((a['params'], a['queue'])), jax.tree.leaves((b['params'], b['queue']))):
    np.testing.assert_allclose(x, y, atol=1e-6)
