"""Joins a multi-host (multi-process) JAX run before anything touches a device.

Two ways in, both through ``jax.distributed.initialize``:

* from the environment (``--distributed``): on a Cloud TPU pod slice and under
  SLURM (or Open MPI, Kubernetes via mpi4py) JAX finds the coordinator, the
  process count and this process's id by itself;
* by hand (``--coordinator_address``, ``--num_processes``, ``--process_id``):
  anywhere else, e.g. GPU machines started with ssh, or two processes on one
  machine. Giving them implies ``--distributed``.

On CPU the processes talk through gloo collectives (jax's default CPU
implementation since 0.5; set explicitly here so an older default cannot
silently turn cross-process collectives into a hang or an error).
"""

from __future__ import annotations

import logging
from typing import Optional

EXPLICIT_FLAGS = ('coordinator_address', 'num_processes', 'process_id')


def check_flags(*, coordinator_address: Optional[str], num_processes: Optional[int],
                process_id: Optional[int]) -> None:
  """Raises ValueError (one line) unless the explicit flags are all given or none is.

  A partial set cannot work: every process must know the coordinator, how many
  peers to wait for and which one it is, or the run hangs until a timeout.
  """
  given = {'coordinator_address': coordinator_address, 'num_processes': num_processes, 'process_id': process_id}
  missing = [f'--{name}' for name, value in given.items() if value is None]
  if missing and len(missing) < len(given):
    raise ValueError(f'{", ".join(missing)} missing: a hand-launched multi-host run needs all of '
                     '--coordinator_address=HOST:PORT, --num_processes=N and --process_id=I (0..N-1); '
                     'on TPU pods and SLURM pass --distributed alone.')
  if not missing:
    if num_processes < 1:
      raise ValueError(f'--num_processes={num_processes} must be at least 1.')
    if not 0 <= process_id < num_processes:
      raise ValueError(f'--process_id={process_id} must be in 0..{num_processes - 1} (--num_processes={num_processes}).')
    if ':' not in coordinator_address:
      raise ValueError(f'--coordinator_address={coordinator_address!r} must be HOST:PORT, e.g. 10.0.0.1:1234.')


def initialize(*, distributed: bool, coordinator_address: Optional[str] = None,
               num_processes: Optional[int] = None, process_id: Optional[int] = None) -> bool:
  """Joins the multi-process run if asked to; returns whether it did.

  Must run before the first JAX computation (jax.devices() included).
  """
  check_flags(coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id)
  explicit = coordinator_address is not None
  if not (distributed or explicit):
    return False
  import jax  # pylint: disable=g-import-not-at-top  # here: main checks its flags and config before JAX imports
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # only the CPU backend reads it
  if explicit:
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)
  else:
    jax.distributed.initialize()  # TPU metadata, SLURM_* or OMPI_* variables say who is who.
  logging.info('Joined a multi-host run: process %d of %d, %d local / %d global devices.', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  return True

