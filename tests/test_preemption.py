"""Real signals to a real ``python -m scfa_jax.main``: SIGTERM saves and exits 143, kill -9 loses nothing.

Each interrupted run is followed by the same run (the same command after
SIGTERM; in this process after kill -9), which must end with the parameters of
an uninterrupted run (computed in-process once).
"""

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from scfa_jax import errors
from scfa_jax.training import checkpointing
from scfa_jax.training import loop
from scfa_jax.training import preemption
from scfa_jax.training import train
from tests.conftest import config_file
from tests.conftest import make_tiny_config
from tests.conftest import without_compilation_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 5  # 3 steps per epoch: 15 steps, a checkpoint after each, so there is time to signal mid-run (at step 4)
LAST_STEP = 3 * EPOCHS


def _overrides(data_dir: str) -> dict:
  """The tiny config of tests/conftest.py as overrides of configs/demo.py, a checkpoint after each step."""
  config = make_tiny_config(data_dir)
  return {
      'data.builder_config': 'tiny', 'data.data_dir': data_dir, 'data.grid_rows': 2, 'data.grid_cols': 2,
      'data.tile_size': 8, 'data.shuffle_buffer': 64, 'data.preprocessing': 'imagenet', 'model.depth': 10,
      'model.width': 4, 'model.proj_hidden_dim': 16, 'model.proj_dim': 8, 'optim.learning_rate': 3e-3,
      'optim.warmup_epochs': 0.5, 'optim.weight_decay': config.optim.weight_decay,
      'optim.end_learning_rate_factor': config.optim.end_learning_rate_factor, 'train.batch_size': 8,
      'train.num_epochs': EPOCHS, 'train.log_every_steps': 1, 'ckpt.every_steps': 1, 'ckpt.max_to_keep': 2,
      'eval.after_training': False}


def _command(data_dir: str, workdir: str) -> list[str]:
  """``python -m scfa_jax.main`` with :func:`_overrides` as flags."""
  return [sys.executable, '-m', 'scfa_jax.main', '--config=configs/demo.py', f'--workdir={workdir}',
          *(f'--config.{k}={v}' for k, v in _overrides(data_dir).items())]


def _env(cache_dir: str) -> dict[str, str]:
  return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), JAX_PLATFORMS='cpu',
              JAX_COMPILATION_CACHE_DIR=cache_dir, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp('subprocess_jax_cache'))


@pytest.fixture(scope='module')
def uninterrupted(tiny_data_dir, tmp_path_factory):
  """Final parameters of the same run without interruption (in-process; same numerics as the CLI)."""
  config = make_tiny_config(tiny_data_dir)
  config.train.num_epochs = EPOCHS
  config.ckpt.every_steps = LAST_STEP
  config.eval.after_training = False
  workdir = str(tmp_path_factory.mktemp('uninterrupted'))
  train.train_and_evaluate(config, workdir)
  return _final_params(workdir)


def _final_params(workdir: str):
  manager = checkpointing.create_manager(workdir, make_tiny_config('').ckpt)
  try:
    assert manager.latest_step() == LAST_STEP
    return manager.restore(LAST_STEP, args=ocp.args.StandardRestore())['params']
  finally:
    manager.close()


def _assert_same_params(a, b) -> None:
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, atol=1e-6)


def _signal_when_saved(command, env, step: int, signum: int, timeout: float = 240) -> subprocess.CompletedProcess:
  """Starts ``command``, sends ``signum`` once ``checkpoints/<step>`` exists, returns the finished process."""
  folder = os.path.join(command[4].split('=', 1)[1], 'checkpoints', str(step))
  proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + timeout
  try:
    while not os.path.isdir(folder):
      if proc.poll() is not None or time.monotonic() > deadline:
        raise AssertionError(f'No checkpoint {folder} (exit {proc.returncode}): {proc.communicate()[1][-3000:]}')
      time.sleep(0.02)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
  finally:
    if proc.poll() is None:
      proc.kill()
  return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _run(command, env) -> subprocess.CompletedProcess:
  return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow(seconds=40)
def test_sigterm_saves_the_step_exits_143_and_the_same_command_resumes(tiny_data_dir, tmp_path, cache_dir,
                                                                      uninterrupted):
  command, env = _command(tiny_data_dir, str(tmp_path / 'run')), _env(cache_dir)
  stopped = _signal_when_saved(command, env, step=4, signum=signal.SIGTERM)
  assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
  assert 'Traceback' not in stopped.stderr
  last_line = stopped.stderr.strip().splitlines()[-1]
  match = re.search(r'Stopped by SIGTERM after step (\d+); its checkpoint is in (\S+)\. Run the same command to '
                    r'resume\.$', last_line)
  assert match, stopped.stderr[-3000:]
  step = int(match.group(1))
  assert 4 <= step < LAST_STEP  # stopped mid-run, at the step in flight
  assert match.group(2) == str(tmp_path / 'run' / 'checkpoints' / str(step)) and os.path.isdir(match.group(2))
  assert stopped.stderr.count('Run the same command to resume') == 1

  resumed = _run(command, env)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f'resuming at step {step}' in resumed.stderr  # the start-up summary
  _assert_same_params(_final_params(str(tmp_path / 'run')), uninterrupted)


@pytest.mark.slow(seconds=14)
def test_kill_9_mid_run_then_the_same_command_ends_as_an_uninterrupted_run(tiny_data_dir, tmp_path, cache_dir,
                                                                          uninterrupted, caplog):
  command, env = _command(tiny_data_dir, str(tmp_path / 'run')), _env(cache_dir)
  killed = _signal_when_saved(command, env, step=4, signum=signal.SIGKILL)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]

  # The same run again, in this process (the SIGTERM test above resumes through the command line).
  with caplog.at_level(logging.INFO):
    train.train_and_evaluate(config_file('demo', _overrides(tiny_data_dir)), str(tmp_path / 'run'))
  started = int(re.search(r'resuming at step (\d+)', caplog.text).group(1))
  assert 4 <= started < LAST_STEP
  _assert_same_params(_final_params(str(tmp_path / 'run')), uninterrupted)


def test_no_intact_checkpoint_is_one_line_exit_1(tiny_data_dir, tmp_path):
  """Every checkpoint emptied: one line naming them and the fix (what main prints of a UserError), exit 1."""
  workdir = tmp_path / 'run'
  manager = checkpointing.create_manager(str(workdir), make_tiny_config('').ckpt)
  checkpointing.save(manager, 1, {'params': np.zeros(3, np.float32)})
  manager.close()
  for path in (workdir / 'checkpoints' / '1').rglob('*'):
    if path.is_file():
      path.write_bytes(b'')
  with pytest.raises(errors.UserError) as refused:
    train.train_and_evaluate(config_file('demo', _overrides(tiny_data_dir)), str(workdir))
  message = str(refused.value)
  assert refused.value.exit_code == 1 and '\n' not in message, message
  assert message.startswith('No intact checkpoint') and str(workdir / 'checkpoints' / '1') in message, message
  assert 'restarts training from scratch' in message


class _Writer:
  def write_scalars(self, step, scalars):
    del step, scalars

  def flush(self):
    pass


def test_sigint_in_fit_saves_that_step_and_raises_130(tmp_path):
  """In-process: Ctrl-C during step 3 of 10 ends fit after saving step 3; the handlers are restored."""
  manager = checkpointing.create_manager(str(tmp_path), make_tiny_config('').ckpt)

  def step_fn(state, batch):
    if batch == 3:
      os.kill(os.getpid(), signal.SIGINT)
    return {'w': state['w'] + 1}, {'loss': np.float32(1.0), 'grad_norm': np.float32(1.0)}

  handler = signal.getsignal(signal.SIGINT)
  with pytest.raises(preemption.TrainingInterrupted) as stopped:
    loop.fit({'w': np.zeros(2, np.float32)}, step_fn, iter(range(1, 11)), start_step=0, last_step=10,
             grids_per_step=1, log_every_steps=5, ckpt_every_steps=5, manager=manager, writer=_Writer(),
             nan_hint='')
  assert stopped.value.exit_code == 130 and stopped.value.step == 3
  assert 'SIGINT after step 3' in str(stopped.value)
  assert manager.all_steps() == [3]
  np.testing.assert_array_equal(manager.restore(3, args=ocp.args.StandardRestore())['w'], [3.0, 3.0])
  assert signal.getsignal(signal.SIGINT) is handler
  manager.close()


def test_a_second_signal_is_not_caught():
  """After the first Ctrl-C the previous handler is back, so a second one quits at once."""
  # Python's own handler as the previous one, whatever the test runner or an earlier test left installed.
  runner_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    with preemption.StopOnSignal() as signals:
      assert not signals.should_stop(1)
      os.kill(os.getpid(), signal.SIGINT)
      assert signals.should_stop(2) and signals.signum == signal.SIGINT
      with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
  finally:
    signal.signal(signal.SIGINT, runner_handler)


@pytest.mark.parametrize('signal_name', ['SIGTERM', 'SIGINT'])
def test_two_processes_stop_at_the_same_step(signal_name):
  """A signal to one of two JAX processes stops both at one agreed step (JAX's preemption sync point)."""
  with socket.socket() as s:
    s.bind(('localhost', 0))
    port = s.getsockname()[1]
  script = os.path.join(ROOT, 'tests', 'preemption_multihost_script.py')
  env = dict(without_compilation_cache(os.environ), PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
             JAX_PLATFORMS='cpu')
  procs = [subprocess.Popen([sys.executable, script, str(port), str(i), signal_name], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
  try:
    outputs = [p.communicate(timeout=120) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  lines = [out.strip().splitlines()[-1] if out.strip() else err[-2000:] for out, err in outputs]
  steps = [line.split()[1] if line.startswith('stop ') else line for line in lines]
  assert steps[0] == steps[1] and int(steps[0]) > 5, lines
  assert lines[1].split()[2] == str(int(getattr(signal, signal_name)))  # the signalled host reports its signal
