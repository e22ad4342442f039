"""Two processes preparing one dataset in one data_dir: one builds, the other waits and reuses it."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_concurrent_preparation_builds_once(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
  script = os.path.join(ROOT, 'tests', 'dataset_lock_script.py')
  procs = [subprocess.Popen([sys.executable, script, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for _ in range(2)]
  outputs = []
  for proc in procs:
    try:
      out, err = proc.communicate(timeout=240)
    finally:
      proc.kill()
    assert proc.returncode == 0, err[-3000:]
    outputs.append(json.loads(out.strip().splitlines()[-1]))
  assert sorted(o['built'] for o in outputs) == [0, 1], outputs  # one writer; the other reused its build
  assert all((o['train'], o['test']) == (24, 12) for o in outputs), outputs
