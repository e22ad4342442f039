"""Forward compute per video: the cost side of every accuracy in results.json.

SCFA's claim is efficiency, so a method is only comparable together with what
it costs. The count comes from XLA's own cost analysis of the inference
forward pass (encoder + heads) on one image, taken from the lowered program
(no compilation, no device work), and is multiplied by the images a video is
scored from: one grid per video for a single view, K for K averaged views.
FLOPs count a multiply-add as two, as XLA does.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp


def forward_flops(apply_fn: Callable[..., Any], variables: Any, image_shape: tuple[int, int, int]) -> float:
  """XLA's FLOP count of ``apply_fn(variables, image[None], train=False)`` for one image.

  Args:
    apply_fn: the model's ``apply``.
    variables: {'params': ..., 'batch_stats': ...} (arrays or ShapeDtypeStructs; only shapes are used).
    image_shape: (H, W, 3) of one model input.

  Raises:
    ValueError: the backend's cost analysis reports no FLOP count.
  """
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), variables)
  image = jax.ShapeDtypeStruct((1,) + tuple(image_shape), jnp.float32)
  lowered = jax.jit(lambda v, x: apply_fn(v, x, train=False)).lower(abstract, image)
  analysis = lowered.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older JAX: one dict per computation
    analysis = analysis[0] if analysis else {}
  flops = (analysis or {}).get('flops')
  if not flops or flops <= 0:
    raise ValueError('XLA cost analysis reported no FLOP count for the forward pass.')
  return float(flops)


def compute_entry(flops_per_image: float, *, images_per_video_single: int, images_per_video_averaged: int,
                  image_shape: tuple[int, int, int]) -> dict[str, Any]:
  """The results.json ``compute`` object (GFLOPs, rounded to what is meaningful)."""
  gflops = flops_per_image / 1e9
  return {
      'forward_gflops_per_image': round(gflops, 4),
      'image_shape': [int(d) for d in image_shape],
      'images_per_video': {'single_view': int(images_per_video_single), 'averaged': int(images_per_video_averaged)},
      'forward_gflops_per_video': {'single_view': round(gflops * images_per_video_single, 4),
                                   'averaged': round(gflops * images_per_video_averaged, 4)},
  }
