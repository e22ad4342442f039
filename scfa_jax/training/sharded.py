"""Data parallelism on ``jax.jit``: a device mesh, NamedSharding, one global computation.

The alternative to ``training.parallel`` (pmap), chosen with
``config.train.parallelism = 'jit'``. The step is written as if one device saw
the whole global batch (``axis_name=None`` everywhere): the batch is sharded
along its first axis over a 1-D mesh of all devices, the state is replicated,
and XLA's SPMD partitioner inserts the collectives. So BatchNorm statistics
are over the global batch (synchronised by construction) and SupCon contrasts
every anchor with the global batch without an explicit all_gather; the update
is the single-device update on the global batch, as with pmap. The step stacks
the views video-major (``steps.stack_views``), so each device encodes only the
videos it holds: the compiled step moves projections, labels, BatchNorm sums
and gradients between devices, never images (tests/test_jit_parallel.py reads
the compiled program).

The state argument is donated: the step updates it in place, one copy lives
on the devices. Multi-host: each process passes its local batch rows and
``shard_batch`` assembles the global array
(``jax.make_array_from_process_local_data``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = 'data'  # The mesh axis the batch is split over (never named inside the step).

PyTree = Any


@functools.cache
def global_mesh() -> Mesh:
  """A 1-D mesh over every device of every process."""
  return Mesh(np.asarray(jax.devices()), (AXIS,))


def replicated() -> NamedSharding:
  return NamedSharding(global_mesh(), PartitionSpec())


def batch_sharded() -> NamedSharding:
  return NamedSharding(global_mesh(), PartitionSpec(AXIS))


def replicate(tree: PyTree) -> PyTree:
  """Copies a host pytree onto every device, replicated (fresh buffers the step may donate)."""
  return jax.device_put(tree, replicated())


def shard_batch(batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
  """This process's rows [B_local, ...] -> the global batch [B_global, ...], split over the mesh."""
  n = jax.local_device_count()
  sharding = batch_sharded()

  def put(x: np.ndarray) -> jax.Array:
    if x.shape[0] % n:
      raise ValueError(f'Host batch of {x.shape[0]} does not split over {n} local devices.')
    if jax.process_count() == 1:
      return jax.device_put(x, sharding)
    return jax.make_array_from_process_local_data(sharding, x)

  return jax.tree.map(put, batch)


def jit_step(step_fn: Callable[..., Any], *, donate_state: bool) -> Callable[..., Any]:
  """jits ``step_fn(state, batch) -> (state, metrics)`` over the mesh.

  ``step_fn`` must be the global computation (``axis_name=None``): the
  shardings alone make it data-parallel. State and metrics come back
  replicated, so the host code is the same as with ``parallel.pmap_step``.
  """
  return jax.jit(step_fn, in_shardings=(replicated(), batch_sharded()), out_shardings=(replicated(), replicated()),
                 donate_argnums=(0,) if donate_state else ())
