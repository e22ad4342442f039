"""Stopping a training phase cleanly on SIGTERM and SIGINT (preemption, ``kill``, Ctrl-C).

TPU and SLURM preemption arrive as SIGTERM, Ctrl-C as SIGINT. Instead of dying
mid-step, the training loop asks :meth:`StopOnSignal.should_stop` after every
step; when it says yes the loop saves a checkpoint of that step and raises
:class:`TrainingInterrupted`, which ``main`` turns into one line and exit code
128 + signal (143 for SIGTERM, 130 for SIGINT), as a shell reports a process
killed by that signal.

With several processes every host must save the *same* step (orbax saves are
collective), so the decision comes from JAX's preemption sync point: JAX's
coordination service listens for SIGTERM on each host, tells the others, and
all hosts agree on the next safe step. A local flag would let hosts disagree
and hang in the save.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Optional

import jax
from jax._src import distributed  # the sync manager's presence: there is no public query
from jax.experimental import multihost_utils

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(Exception):
  """A training phase stopped on a signal after saving a checkpoint; the same command resumes it."""

  def __init__(self, signum: int, step: int, checkpoint_dir: str):
    self.signum, self.step = signum, step
    self.exit_code = 128 + signum
    super().__init__(f'Stopped by {signal.Signals(signum).name} after step {step}; its checkpoint is in '
                     f'{os.path.join(checkpoint_dir, str(step))}. Run the same command to resume.')


def _preemption_service_running() -> bool:
  return jax.process_count() > 1 and distributed.global_state.preemption_sync_manager is not None


class StopOnSignal:
  """Context manager: while active, SIGTERM and SIGINT ask the loop to stop instead of killing it.

  The previous handlers come back on exit, and already after the first signal,
  so a second Ctrl-C (or SIGTERM) ends the process at once as usual.
  """

  def __init__(self) -> None:
    self.signum: Optional[int] = None
    self._previous: dict[int, object] = {}
    self._multihost = _preemption_service_running()
    if jax.process_count() > 1 and not self._multihost:
      logging.warning('JAX preemption service is off (jax_enable_preemption_service): a signal to one host '
                      'stops only that host, and the others wait for it.')

  def __enter__(self) -> 'StopOnSignal':
    if threading.current_thread() is not threading.main_thread():
      return self  # Python delivers signals to the main thread only; leave handling to it.
    for signum in STOP_SIGNALS:
      if self._multihost and signum == signal.SIGTERM:
        continue  # JAX's preemption notifier listens for SIGTERM itself.
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous.clear()

  def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
    del frame
    if self.signum is None:
      self.signum = signum
    logging.warning('Received %s: finishing this step and saving a checkpoint (send it again to quit at once).',
                    signal.Signals(signum).name)
    signal.signal(signum, self._previous.pop(signum, signal.SIG_DFL))
    if self._multihost:
      os.kill(os.getpid(), signal.SIGTERM)  # Ctrl-C on one host: tell all of them through JAX's service.

  def should_stop(self, step: int) -> bool:
    """Whether to save ``step`` and stop; call it after every step, on every host."""
    if self._multihost:
      if multihost_utils.reached_preemption_sync_point(step):
        self.signum = self.signum or signal.SIGTERM  # This host may not be the one that was signalled.
        return True
      return False
    return self.signum is not None
