"""Data parallelism over the local devices: the only module that touches pmap.

State is replicated once (``replicate``) and stays on the devices; batches are
reshaped to [local_devices, per_device, ...] and placed shard by shard
(``shard_batch``) ahead of the step (``prefetch_to_device``). Steps are pmapped
with the state unmapped (``in_axes=(None, 0)``) and returned unmapped, so the
host code never sees a leading device axis on parameters.
"""

from __future__ import annotations

import collections
import functools
import itertools
from typing import Any, Callable, Iterable, Iterator

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = 'batch'  # The pmap axis name: collectives in steps, losses and BatchNorm use it.

PyTree = Any


@functools.cache
def local_mesh() -> Mesh:
  return Mesh(np.asarray(jax.local_devices()), (AXIS,))


def replicate(tree: PyTree) -> PyTree:
  """Copies a host pytree onto every local device (the unmapped-state layout)."""
  return jax.device_put(tree, NamedSharding(local_mesh(), PartitionSpec()))


def shard_batch(batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
  """Splits a host batch [B, ...] into [local_devices, B // local_devices, ...] on the devices."""
  n = jax.local_device_count()

  def put(x: np.ndarray) -> jax.Array:
    if x.shape[0] % n:
      raise ValueError(f'Host batch of {x.shape[0]} does not split over {n} local devices.')
    return jax.device_put(x.reshape((n, x.shape[0] // n) + x.shape[1:]), NamedSharding(local_mesh(), PartitionSpec(AXIS)))

  return jax.tree.map(put, batch)


def prefetch_to_device(batches: Iterable[dict[str, np.ndarray]], size: int,
                       put: Callable[[dict[str, np.ndarray]], dict[str, jax.Array]] = shard_batch,
                       ) -> Iterator[dict[str, jax.Array]]:
  """Keeps ``size`` batches in flight to the devices (placed by ``put``) while the current step runs."""
  queue: collections.deque = collections.deque()
  iterator = iter(batches)
  queue.extend(put(b) for b in itertools.islice(iterator, max(size, 1)))
  while queue:
    yield queue.popleft()
    queue.extend(put(b) for b in itertools.islice(iterator, 1))


def pmap_step(step_fn: Callable[..., Any], *, donate_state: bool) -> Callable[..., Any]:
  """pmaps ``step_fn(state, batch)`` with unmapped state in and (state-like) out."""
  return jax.pmap(step_fn, axis_name=AXIS, in_axes=(None, 0), out_axes=None if donate_state else 0,
                  donate_argnums=(0,) if donate_state else ())


def unshard(x: jax.Array) -> np.ndarray:
  """[local_devices, per_device, ...] device array -> host array [B, ...]."""
  x = np.asarray(jax.device_get(x))
  return x.reshape((-1,) + x.shape[2:])
