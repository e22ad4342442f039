"""Two processes on localhost (2 CPU devices each, gloo collectives) train through ``scfa_jax.main``.

One test, four runs of the real entry point (tests/multihost_script.py):

1. two processes train steps 1-2 (``--coordinator_address`` etc.), while a
   reference, one process with 4 devices fed the same global batches, trains
   steps 1-6 in its own workdir;
2. two processes resume from step 2, train to 4 and evaluate;
3. one process with 4 devices resumes the two-process checkpoint to step 6.

The checkpoints at steps 2, 4 and 6 equal the reference's; process 1 writes no
file in the workdir (results, figures, TensorBoard events are process 0's).
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import orbax.checkpoint as ocp
import pytest

from scfa_jax.training import distributed
from tests.conftest import host_devices
from tests.conftest import without_compilation_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'tests', 'multihost_script.py')
TIMEOUT_S = 900  # per phase: generous, as the phases took 3-7 minutes on a 2-core machine at load 10-18
# Measured (jax 0.10.2, CPU): parameters differ by at most 6e-7; Adam's moments (values up to ~3.4) by 2.1e-5,
# scaled by max(1, the leaf's largest |value|) at most 1.0e-5: float32 sums in another order.
PARAMS_TOLERANCE = 1e-5
STATE_TOLERANCE = 5e-5


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _env(devices: int, **extra) -> dict:
  """A two-process run's environment (``MH_REFERENCE`` set: a one-process run's, which keeps the shared cache).

  No persistent compilation cache with gloo: with it, its context set-up timed out in the second
  two-process run. The one-process runs (the reference, phase 3) compile the same program, so phase 3
  reads the reference's executable from the cache.
  """
  base = os.environ if 'MH_REFERENCE' in extra else without_compilation_cache(os.environ)
  return dict(base, JAX_PLATFORMS='cpu',
              XLA_FLAGS=host_devices(devices),
              PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), **extra)


def _flags(data_dir: str, workdir, max_steps: int, evaluate: bool) -> list[str]:
  return [f'--config={os.path.join(ROOT, "tests", "multihost_config.py")}:{data_dir}', f'--workdir={workdir}',
          f'--config.train.max_steps={max_steps}', '--config.ckpt.max_to_keep=3',
          f'--config.eval.after_training={evaluate}', f'--config.eval.plots={evaluate}',
          '--config.eval.num_test_clips=1']


def _start(args: list[str], env: dict, log) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, SCRIPT] + args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def _wait(procs: list[subprocess.Popen], logs: list[str]) -> None:
  try:
    for proc in procs:
      proc.wait(timeout=TIMEOUT_S)
  finally:
    for proc in procs:
      proc.kill()
  for proc, log in zip(procs, logs):
    with open(log) as f:
      assert proc.returncode == 0, f'{log}:\n' + f.read()[-4000:]


def _two_processes(tmp_path, name: str, flags: list[str]) -> list[str]:
  """Runs a two-process job; returns the workdir files each process opened for writing."""
  port = _free_port()
  procs, logs = [], []
  for i in range(2):
    logs.append(str(tmp_path / f'{name}.{i}.log'))
    env = _env(2, MH_WRITES_LOG=str(tmp_path / f'{name}.{i}.writes.json'))
    procs.append(_start(flags + [f'--coordinator_address=localhost:{port}', '--num_processes=2', f'--process_id={i}'],
                        env, open(logs[-1], 'w')))
  return procs, logs


def _writes(tmp_path, name: str, i: int) -> list[str]:
  with open(tmp_path / f'{name}.{i}.writes.json') as f:
    return json.load(f)


def _checkpoint(workdir, step: int) -> dict:
  return ocp.PyTreeCheckpointer().restore(os.path.join(workdir, 'checkpoints', str(step), 'default'))


def _max_diff(a, b) -> float:
  """Largest |a - b| over the leaves, each divided by max(1, the leaf's largest |b|)."""
  leaves_a, leaves_b = _leaves(a), _leaves(b)
  assert leaves_a.keys() == leaves_b.keys()
  diffs = []
  for k in leaves_a:
    x, y = np.asarray(leaves_a[k], np.float64), np.asarray(leaves_b[k], np.float64)
    diffs.append(float(np.max(np.abs(x - y)) / max(1.0, float(np.max(np.abs(y))))))
  return max(diffs)


def _leaves(tree, prefix='') -> dict:
  if isinstance(tree, dict):
    return {k: v for key, sub in tree.items() for k, v in _leaves(sub, f'{prefix}/{key}').items()}
  if isinstance(tree, (list, tuple)):
    return {k: v for i, sub in enumerate(tree) for k, v in _leaves(sub, f'{prefix}/{i}').items()}
  return {prefix: tree}


@pytest.mark.slow(seconds=100)
def test_two_processes_train_like_one(tiny_data_dir, tmp_path):
  work, ref = tmp_path / 'work', tmp_path / 'reference'

  # 1. Two processes, steps 1-2; at the same time the one-process reference, steps 1-6.
  procs, logs = _two_processes(tmp_path, 'first', _flags(tiny_data_dir, work, 2, False))
  logs.append(str(tmp_path / 'reference.log'))
  procs.append(_start(_flags(tiny_data_dir, ref, 6, False), _env(4, MH_REFERENCE='1'),
                      open(logs[-1], 'w')))
  _wait(procs, logs)

  # 2. Two processes resume at step 2, train to 4 and evaluate.
  first_process_0 = procs[0].pid
  procs, logs = _two_processes(tmp_path, 'second', _flags(tiny_data_dir, work, 4, True))
  _wait(procs, logs)
  with open(work / 'results.json') as f:
    assert json.load(f)['step'] == 4
  assert _writes(tmp_path, 'second', 1) == [], 'process 1 wrote into the workdir'
  written = {name.removesuffix('.tmp') for name in _writes(tmp_path, 'second', 0)}  # results.json: tmp + rename
  assert {'results.json', 'confusion_matrix.png'} <= written
  # TensorBoard names event files ...<host>.<pid>.0.v2: one per run, each by process 0.
  event_pids = sorted(int(f.split('.')[-3]) for f in os.listdir(work) if f.startswith('events.out.tfevents'))
  assert event_pids == sorted([first_process_0, procs[0].pid]), event_pids

  # 3. One process (4 devices, fed the same global batches) resumes the two-process checkpoint.
  log = str(tmp_path / 'third.log')
  _wait([_start(_flags(tiny_data_dir, work, 6, False), _env(4, MH_REFERENCE='1'), open(log, 'w'))], [log])

  for step in (2, 4, 6):
    got, want = _checkpoint(work, step), _checkpoint(ref, step)
    assert int(got['step']) == int(want['step']) == step
    params_diff, state_diff = _max_diff(got['params'], want['params']), _max_diff(got, want)
    assert params_diff < PARAMS_TOLERANCE, f'step {step}: parameters differ from one process by {params_diff}'
    assert state_diff < STATE_TOLERANCE, f'step {step}: the train state differs from one process by {state_diff}'
  assert _max_diff(_checkpoint(ref, 6)['params'], _checkpoint(ref, 2)['params']) > 1e-4  # training moved them


@pytest.mark.parametrize('given,expected', [
    ({'process_id': 1}, '--coordinator_address, --num_processes missing'),
    ({'coordinator_address': 'localhost:1234', 'num_processes': 2}, '--process_id missing'),
    ({'coordinator_address': 'localhost:1234', 'num_processes': 2, 'process_id': 2}, 'must be in 0..1'),
    ({'coordinator_address': 'localhost', 'num_processes': 2, 'process_id': 0}, 'must be HOST:PORT'),
])
def test_bad_explicit_flags_are_refused(given, expected):
  flags = dict(dict.fromkeys(distributed.EXPLICIT_FLAGS), **given)
  with pytest.raises(ValueError, match=expected):
    distributed.check_flags(**flags)


def test_no_flags_stay_single_process():
  assert not distributed.initialize(distributed=False)


def test_partial_flags_exit_2_in_one_line(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
  proc = subprocess.run([sys.executable, '-m', 'scfa_jax.main', '--config=configs/demo.py',
                         f'--workdir={tmp_path / "run"}', '--process_id=1'], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert '--coordinator_address, --num_processes missing' in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert not (tmp_path / 'run').exists()
