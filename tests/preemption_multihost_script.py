"""One of two JAX processes on localhost for tests/test_preemption.py: which step does each stop at?

Usage: python preemption_multihost_script.py <port> <process_id> <SIGTERM|SIGINT>. Process 1 signals
itself at step 5; both print ``stop <step> <signum>`` when the preemption sync point says so.
"""

import os
import signal
import sys
import time

import jax


def main(port: int, process_id: int, signal_name: str) -> None:
  jax.distributed.initialize(f'localhost:{port}', num_processes=2, process_id=process_id)
  from scfa_jax.training import preemption  # pylint: disable=g-import-not-at-top
  with preemption.StopOnSignal() as signals:
    for step in range(1, 1000):
      time.sleep(0.02)
      if process_id == 1 and step == 5:
        os.kill(os.getpid(), getattr(signal, signal_name))
      if signals.should_stop(step):
        print(f'stop {step} {signals.signum}', flush=True)
        return
  print('never stopped', flush=True)


if __name__ == '__main__':
  main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
