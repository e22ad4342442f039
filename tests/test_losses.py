"""SupCon against a direct transcription of the formula in REFERENCE.md."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scfa_jax import losses


def supcon_reference(z, labels, temperature, base_temperature=0.07):
  """L = mean_{i: |P(i)|>0} -1/|P(i)| sum_{p in P(i)} log(exp(z_i.z_p/t) / sum_{a != i} exp(z_i.z_a/t))."""
  n = z.shape[0]
  per_anchor = []
  for i in range(n):
    others = [a for a in range(n) if a != i]
    positives = [p for p in others if labels[p] == labels[i]]
    if not positives:
      continue
    denominator = sum(np.exp(np.dot(z[i], z[a]) / temperature) for a in others)
    terms = [np.log(np.exp(np.dot(z[i], z[p]) / temperature) / denominator) for p in positives]
    per_anchor.append(-(temperature / base_temperature) * sum(terms) / len(positives))
  return sum(per_anchor) / len(per_anchor)


def numeric_gradient(f, z, eps=1e-6):
  """Central differences of a float64 function: a reference gradient independent of autodiff.

  The error (eps^2 times the third derivative, plus round-off) is far below the tests' 1e-5; the loops of the
  transcriptions run in a fraction of a second in NumPy, where JAX's eager autodiff of them took 5-15 s.
  """
  z = np.asarray(z, np.float64)
  grad = np.zeros_like(z)
  for index in np.ndindex(z.shape):
    step = np.zeros_like(z)
    step[index] = eps
    grad[index] = (f(z + step) - f(z - step)) / (2 * eps)
  return grad


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _views(rng, num_videos, num_classes, dim=8, num_views=2):
  """``num_views`` views per video, stacked view-major like the train step does."""
  labels = rng.integers(0, num_classes, size=num_videos)
  z = _unit(rng.normal(size=(num_views * num_videos, dim))).astype(np.float32)
  return z, np.tile(labels, num_views)


@pytest.mark.parametrize('num_videos,num_classes,temperature', [(2, 2, 0.07), (5, 3, 0.07), (8, 8, 0.1), (12, 4, 0.5)])
def test_matches_reference(num_videos, num_classes, temperature):
  rng = np.random.default_rng(num_videos)
  z, labels = _views(rng, num_videos, num_classes)
  loss, aux = losses.supcon_loss(jnp.asarray(z), jnp.asarray(labels), temperature=temperature)
  expected = supcon_reference(z.astype(np.float64), labels, temperature)
  np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-5)
  assert int(aux['num_anchors']) == 2 * num_videos  # the other view is always a positive


def test_singletons_are_left_out_and_never_nan():
  # One view each of three videos; labels 0 and 1 are singletons (no positive).
  rng = np.random.default_rng(0)
  z = _unit(rng.normal(size=(4, 8))).astype(np.float32)
  labels = np.array([0, 1, 2, 2])
  loss, aux = losses.supcon_loss(jnp.asarray(z), jnp.asarray(labels), temperature=0.07)
  assert int(aux['num_anchors']) == 2
  np.testing.assert_allclose(loss, supcon_reference(z.astype(np.float64), labels, 0.07), rtol=1e-5)
  # All singletons: zero loss and finite gradient, not NaN.
  grad = jax.grad(lambda z: losses.supcon_loss(z, jnp.arange(4), temperature=0.07)[0])(jnp.asarray(z))
  assert np.all(np.isfinite(grad))
  assert float(losses.supcon_loss(jnp.asarray(z), jnp.arange(4), temperature=0.07)[0]) == 0.0


def test_permutation_invariant():
  rng = np.random.default_rng(1)
  z, labels = _views(rng, 6, 3)
  perm = rng.permutation(len(labels))
  a = losses.supcon_loss(jnp.asarray(z), jnp.asarray(labels))[0]
  b = losses.supcon_loss(jnp.asarray(z[perm]), jnp.asarray(labels[perm]))[0]
  np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize('num_videos,num_classes', [(3, 2), (6, 6)])
def test_gradient_matches_reference(num_videos, num_classes):
  rng = np.random.default_rng(2)
  z, labels = _views(rng, num_videos, num_classes)
  ours = jax.grad(lambda z: losses.supcon_loss(z, jnp.asarray(labels), temperature=0.1)[0])(jnp.asarray(z))
  ref = numeric_gradient(lambda z: supcon_reference(z, labels, 0.1), z)
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize('num_views', [3, 4])
@pytest.mark.parametrize('num_videos,num_classes', [(1, 1), (4, 2)])
def test_more_than_two_views_match_reference(num_views, num_videos, num_classes):
  """Global + local views: every other view of the video, and of its class, is a positive (values and gradients)."""
  rng = np.random.default_rng(10 * num_views + num_videos)
  z, labels = _views(rng, num_videos, num_classes, num_views=num_views)
  loss, aux = losses.supcon_loss(jnp.asarray(z), jnp.asarray(labels), temperature=0.1)
  np.testing.assert_allclose(loss, supcon_reference(z.astype(np.float64), labels, 0.1), rtol=1e-5, atol=1e-5)
  assert int(aux['num_anchors']) == num_views * num_videos
  ours = jax.grad(lambda z: losses.supcon_loss(z, jnp.asarray(labels), temperature=0.1)[0])(jnp.asarray(z))
  ref = numeric_gradient(lambda z: supcon_reference(z, labels, 0.1), z)
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_stack_views_is_view_major_for_any_view_count():
  """steps.stack_views puts view v of video b at row v * B + b, with the video's label: what the loss expects."""
  from scfa_jax.training import steps  # pylint: disable=g-import-not-at-top
  views = np.arange(4 * 3).reshape(4, 3, 1, 1, 1)  # [B=4, V=3], value = 3 * b + v
  images, labels = steps.stack_views(jnp.asarray(views), jnp.arange(4) * 10)
  assert images.shape == (12, 1, 1, 1)
  np.testing.assert_array_equal(np.asarray(images).reshape(3, 4), np.arange(12).reshape(4, 3).T)
  np.testing.assert_array_equal(labels, np.tile(np.arange(4) * 10, 3))
  # Video-major (the jit path): view v of video b at row b * V + v; video_to_view_major restores the order above.
  rows, row_labels = steps.stack_views(jnp.asarray(views), jnp.arange(4) * 10, video_major=True)
  np.testing.assert_array_equal(np.asarray(rows).ravel(), np.arange(12))
  np.testing.assert_array_equal(row_labels, np.repeat(np.arange(4) * 10, 3))
  np.testing.assert_array_equal(steps.video_to_view_major(rows, 3), images)
  np.testing.assert_array_equal(steps.video_to_view_major(row_labels, 3), labels)


def test_large_logits_are_stable():
  # t = 0.01 on identical vectors: exp(100) would overflow without the max shift.
  z = jnp.ones((6, 4)) / 2.0
  loss = losses.supcon_loss(z, jnp.array([0, 0, 1, 1, 2, 2]), temperature=0.01)[0]
  np.testing.assert_allclose(loss, np.log(5.0) * 0.01 / 0.07, rtol=1e-5)


def test_masked_rows_are_ignored():
  rng = np.random.default_rng(3)
  z, labels = _views(rng, 4, 2)
  valid = np.ones(len(labels), bool)
  valid[[1, 5]] = False  # drop both views of video 1
  keep = np.flatnonzero(valid)
  masked = losses.supcon_loss(jnp.asarray(z), jnp.asarray(labels), valid=jnp.asarray(valid))[0]
  direct = losses.supcon_loss(jnp.asarray(z[keep]), jnp.asarray(labels[keep]))[0]
  np.testing.assert_allclose(masked, direct, rtol=1e-6)


def test_cross_entropy_matches_numpy():
  rng = np.random.default_rng(4)
  logits = rng.normal(size=(5, 3)).astype(np.float32)
  labels = np.array([0, 2, 1, 1, 0])
  loss, aux = losses.cross_entropy_loss(jnp.asarray(logits), jnp.asarray(labels))
  log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  np.testing.assert_allclose(loss, -log_softmax[np.arange(5), labels].mean(), rtol=1e-5)
  np.testing.assert_allclose(aux['accuracy'], np.mean(logits.argmax(-1) == labels), rtol=1e-6)


def supcon_with_memory_reference(z, labels, memory_z, memory_labels, temperature):
  """The formula with the queue: anchors are the batch rows; A(i) = the other batch rows and every queue entry."""
  n = z.shape[0]
  contrasts = [(z[a], labels[a]) for a in range(n)] + list(zip(memory_z, memory_labels))
  per_anchor = []
  for i in range(n):
    others = [c for a, c in enumerate(contrasts) if a != i]
    positives = [v for v, label in others if label == labels[i]]
    if not positives:
      continue
    denominator = sum(np.exp(np.dot(z[i], v) / temperature) for v, _ in others)
    terms = [np.log(np.exp(np.dot(z[i], p) / temperature) / denominator) for p in positives]
    per_anchor.append(-(temperature / 0.07) * sum(terms) / len(positives))
  return sum(per_anchor) / len(per_anchor)


@pytest.mark.parametrize('num_videos,queue_size,num_classes', [
    (3, 4, 2),
    pytest.param(4, 10, 5, marks=pytest.mark.slow(seconds=7)),
    pytest.param(2, 6, 6, marks=pytest.mark.slow(seconds=4)),
])
def test_memory_queue_matches_reference_values_and_gradients(num_videos, queue_size, num_classes):
  rng = np.random.default_rng(queue_size)
  z, labels = _views(rng, num_videos, num_classes)
  memory_z = _unit(rng.normal(size=(queue_size, z.shape[1]))).astype(np.float32)
  memory_labels = rng.integers(0, num_classes, size=queue_size)
  memory = (jnp.asarray(memory_z), jnp.asarray(memory_labels), jnp.ones(queue_size, bool))
  ours = lambda z: losses.supcon_loss(z, jnp.asarray(labels), temperature=0.1, memory=memory)[0]
  ref = lambda z: supcon_with_memory_reference(z, labels, memory_z.astype(np.float64), memory_labels, 0.1)
  np.testing.assert_allclose(ours(jnp.asarray(z)), ref(z.astype(np.float64)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jax.grad(ours)(jnp.asarray(z)), numeric_gradient(ref, z), rtol=1e-4, atol=1e-5)
  assert float(ours(jnp.asarray(z))) != pytest.approx(float(losses.supcon_loss(jnp.asarray(z), jnp.asarray(labels),
                                                                                temperature=0.1)[0]))


def test_empty_queue_entries_change_nothing():
  rng = np.random.default_rng(5)
  z, labels = _views(rng, 4, 2)
  filled = _unit(rng.normal(size=(3, z.shape[1]))).astype(np.float32)
  memory_z = np.concatenate([filled, np.zeros((5, z.shape[1]), np.float32)])
  memory_labels = np.array([0, 1, 1, 0, 0, 0, 0, 0])
  valid = np.arange(8) < 3  # a fresh queue: only 3 entries written so far
  masked = losses.supcon_loss(jnp.asarray(z), jnp.asarray(labels),
                              memory=(jnp.asarray(memory_z), jnp.asarray(memory_labels), jnp.asarray(valid)))[0]
  direct = losses.supcon_loss(jnp.asarray(z), jnp.asarray(labels),
                              memory=(jnp.asarray(filled), jnp.asarray(memory_labels[:3]), jnp.ones(3, bool)))[0]
  np.testing.assert_allclose(masked, direct, rtol=1e-6)
