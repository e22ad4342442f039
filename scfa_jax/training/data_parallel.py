"""``config.train.parallelism``: the pmap path (``training.parallel``) or the jit path (``training.sharded``).

Both take the same pure ``steps.train_step`` and give the same update; they
differ in how it is spread over the devices. What differs for the caller is
gathered here so that the training code picks a path in one line.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional

import jax
import numpy as np

from scfa_jax.training import parallel
from scfa_jax.training import sharded

CHOICES = ('pmap', 'jit')


class DataParallel(NamedTuple):
  """How one path places state and batches and compiles the step."""

  name: str
  # Axis that the model's BatchNorm and the step's collectives name: the pmap axis, or None for the
  # jit path's global computation (the partitioner makes BatchNorm and SupCon global).
  axis_name: Optional[str]
  replicate: Callable[[Any], Any]
  shard_batch: Callable[[dict[str, np.ndarray]], dict[str, jax.Array]]
  compile_step: Callable[..., Callable[..., Any]]  # (step_fn, *, donate_state) -> step(state, batch)

  def prefetch_to_device(self, batches: Iterable[dict[str, np.ndarray]], size: int) -> Iterator[dict[str, jax.Array]]:
    return parallel.prefetch_to_device(batches, size, put=self.shard_batch)


def select(parallelism: str) -> DataParallel:
  """The path named by ``config.train.parallelism``."""
  if parallelism == 'pmap':
    return DataParallel('pmap', parallel.AXIS, parallel.replicate, parallel.shard_batch, parallel.pmap_step)
  if parallelism == 'jit':
    return DataParallel('jit', None, sharded.replicate, sharded.shard_batch, sharded.jit_step)
  raise ValueError(f'config.train.parallelism={parallelism!r} is not one of {CHOICES}: use pmap (default) or jit.')
