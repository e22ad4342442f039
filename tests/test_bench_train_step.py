"""The training-step benchmark: its JSON line, no recompilation, donated state, and the no-torch hint."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ('backend', 'device_kind', 'jax_step_s', 'jax_grids_per_s', 'compile_s', 'recompiles', 'peak_mem_mb',
        'torch_step_s', 'torch_grids_per_s', 'ratio', 'mfu')


@pytest.mark.slow(seconds=24)
def test_tiny_bench_jit_path_with_torch_and_end_to_end(tmp_path):
  """A tiny model through the jit path, the torch reference and the real pipeline + loop."""
  cmd = [sys.executable, '-m', 'scfa_jax.bench', 'train_step', '--depth=10', '--width=4', '--image_size=32',
         '--batch=4', '--steps=2', '--warmup=1', '--parallel=jit', '--end_to_end', '--clips=8', '--min_frames=16',
         '--max_frames=20', '--shorter_side=16', '--grid=2', '--tile_size=16', '--e2e_steps=4',
         f'--data_dir={tmp_path}']
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-4000:]
  r = json.loads(proc.stdout.strip().splitlines()[-1])
  assert all(k in r for k in KEYS), r
  assert r['backend'] == 'cpu' and r['mfu'] is None  # no peak FLOP/s for CPUs
  assert r['recompiles'] == 0 and r['compiles_first_step'] >= 1, r
  assert r['state_donated'] is True and r['state_copies'] < 1.5, r
  assert r['jax_step_s'] > 0 and r['model_gflop_per_step'] > 0, r
  # The step times are printed rounded to 0.1 ms; for a tiny model that moves their quotient by a few percent.
  assert r['torch_step_s'] > 0 and abs(r['ratio'] - r['jax_step_s'] / r['torch_step_s']) <= 0.05 * r['ratio'] + 1e-3, r
  assert r['e2e_steps_measured'] == 3 and r['e2e_grids_per_s'] > 0, r
  assert 0.0 <= r['e2e_fraction_steps_waited'] <= 1.0, r


@pytest.mark.slow(seconds=9)
def test_without_torch_prints_the_install_hint():
  # In a child process: the bench modules define absl flags (--data_dir...) that other tools define too.
  code = ('import importlib.util\n'
          'from scfa_jax.bench import train_step\n'
          'importlib.util.find_spec = lambda name: None  # as if torch were not installed\n'
          'assert train_step.time_torch(depth=10) is None\n')
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
  proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'pip install -e ".[bench]"' in proc.stderr


def test_mfu_only_with_a_known_peak():
  from scfa_jax.bench import flops  # pylint: disable=g-import-not-at-top
  assert flops.mfu(1e12, 1.0, 'cpu', 'float32', 1) is None
  assert abs(flops.mfu(989.4e12 * 0.5, 1.0, 'NVIDIA H100 80GB HBM3', 'bfloat16', 1) - 0.5) < 1e-9
  assert abs(flops.mfu(197e12, 1.0, 'TPU v5 lite', 'bfloat16', 2) - 0.5) < 1e-9
