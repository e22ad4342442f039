"""SupCon over V views on all local devices against one device and the formula; prints the differences as JSON.

Run by tests/test_losses_multidevice.py with XLA_FLAGS=--xla_force_host_platform_device_count=8 (the flag must be
set before JAX starts, hence a separate process). Each device holds its videos' views stacked view-major, as
steps.train_step does, so the rows are a permutation of the single-device layout.
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from scfa_jax import losses
from scfa_jax.training import steps
from tests.test_losses import supcon_reference

AXIS = 'batch'


def main(num_views: int):
  num_devices, per_device, dim, temperature = jax.local_device_count(), 2, 8, 0.1
  rng = np.random.default_rng(num_views)
  labels = rng.integers(0, 3, size=num_devices * per_device).astype(np.int32)
  z = rng.normal(size=(num_devices * per_device, num_views, dim)).astype(np.float32)  # [B, V, d]
  z /= np.linalg.norm(z, axis=-1, keepdims=True)

  def share(z_local, labels_local):  # one device: its videos' views, stacked view-major
    rows, row_labels = steps.stack_views(z_local, labels_local)
    return losses.supcon_loss(rows, row_labels, temperature=temperature, axis_name=AXIS)[0]

  def multi(z, labels):
    value, grad = jax.value_and_grad(share)(z, labels)
    return jax.lax.psum(value, AXIS), grad

  shard = lambda x: x.reshape((num_devices, per_device) + x.shape[1:])  # noqa: E731
  loss_multi, grad_multi = jax.pmap(multi, axis_name=AXIS)(shard(z), shard(labels))
  grad_multi = np.asarray(grad_multi).reshape(z.shape)

  def single(z):
    rows, row_labels = steps.stack_views(z, jnp.asarray(labels))
    return losses.supcon_loss(rows, row_labels, temperature=temperature)[0]

  loss_single, grad_single = jax.value_and_grad(single)(jnp.asarray(z))
  rows, row_labels = np.swapaxes(z, 0, 1).reshape(-1, dim), np.tile(labels, num_views)
  print(json.dumps({
      'num_devices': num_devices,
      'loss_multi': float(loss_multi[0]),
      'loss_single': float(loss_single),
      'loss_reference': float(supcon_reference(rows.astype(np.float64), row_labels, temperature)),
      'grad_max_abs_diff': float(np.max(np.abs(grad_multi - np.asarray(grad_single)))),
      'grad_max_abs': float(np.max(np.abs(np.asarray(grad_single)))),
  }))


if __name__ == '__main__':
  main(int(sys.argv[1]))
