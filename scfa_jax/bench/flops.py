"""Model FLOP utilisation: XLA's FLOP count of a step over the devices' peak FLOP/s.

Peaks are dense (no sparsity) figures from the vendors' data sheets, per JAX
device. For NVIDIA GPUs float32 uses the TF32 tensor-core peak, because XLA's
default matmul/conv precision on those GPUs is TF32; TPUs run float32 matmuls
as bfloat16 passes by default, so one peak serves both. CPUs have no entry:
their MFU is reported as null.
"""

from __future__ import annotations

from typing import Optional

# (substring of the lower-cased device_kind, bf16 TFLOP/s, fp32 TFLOP/s); the first match wins.
PEAK_TFLOPS: tuple[tuple[str, float, float], ...] = (
    ('h200', 989.4, 494.7),
    ('h100 pcie', 756.5, 378.0),
    ('h100', 989.4, 494.7),  # SXM
    ('a100', 312.0, 156.0),
    ('l4', 121.0, 60.0),
    ('tpu v6 lite', 918.0, 918.0),  # v6e (Trillium), per chip
    ('tpu v5 lite', 197.0, 197.0),  # v5e, per chip
    ('tpu v5', 459.0, 459.0),  # v5p, per chip
    ('tpu v4', 275.0, 275.0),  # per chip (one JAX device with megacore)
    ('tpu v3', 61.5, 61.5),  # per core (one JAX device)
    ('tpu v2', 22.5, 22.5),  # per core
)


def peak_flops(device_kind: str, dtype: str) -> Optional[float]:
  """Peak FLOP/s of one device of this kind at this compute dtype; None when unknown (CPUs)."""
  kind = device_kind.lower()
  for key, bf16, fp32 in PEAK_TFLOPS:
    if key in kind:
      return 1e12 * (bf16 if dtype == 'bfloat16' else fp32)
  return None


def mfu(flops_per_step: Optional[float], step_s: float, device_kind: str, dtype: str,
        num_devices: int) -> Optional[float]:
  """Achieved FLOP/s over the peak of all devices taking part; None without a peak or a FLOP count."""
  peak = peak_flops(device_kind, dtype)
  if peak is None or not flops_per_step or step_s <= 0:
    return None
  return flops_per_step / step_s / (peak * num_devices)
