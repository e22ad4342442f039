"""XLA:CPU kernel choice for the training step: set before JAX starts its backends.

Why: XLA's CPU backend hands convolutions to YNNPACK by default. On the
ResNet-50 SCFA step (2 Zen 4 cores, 224 px, 8 videos) XLA's own (Eigen)
convolutions ran the 56 px layers about 1.7x faster than YNNPACK's and the
stem's weight gradient 2.3x faster, the rest about as fast
(``python -m scfa_jax.bench layers``; docs/performance.md), and the whole
step went from 3.8 s to 3.5-3.6 s. YNNPACK stays
in charge of matrix products (the 1x1 convolutions, see
``models.resnet.PointwiseConv``) and reductions, where it is the faster one:
turning it off entirely made the step 1.5x slower.

XLA reads ``XLA_FLAGS`` once, when the first backend starts, and aborts the
process on a flag it does not know. So this is applied only by entry points
(``scfa_jax.main``, ``scfa_jax.bench``) before their first JAX call, only on
the jaxlib versions it was measured on, and never over a user's own setting.
The flag names the CPU backend only: GPU and TPU compilation is unchanged.
"""

from __future__ import annotations

import os
import re
from typing import MutableMapping, Optional

FLAG = 'xla_cpu_experimental_ynn_fusion_type'
# Matrix products and reductions stay with YNNPACK; convolutions go to XLA's own emitter.
VALUE = 'individual_dot,reduce'
# jaxlib (major, minor) releases where FLAG and VALUE exist and were measured to help.
MEASURED_JAXLIB = ((0, 10),)
OPT_OUT = 'SCFA_XLA_CPU_DEFAULTS'  # set to 0 to keep XLA's own choice


def _major_minor(version: str) -> Optional[tuple[int, int]]:
  match = re.match(r'(\d+)\.(\d+)', version)
  return (int(match.group(1)), int(match.group(2))) if match else None


def cpu_kernel_flags(xla_flags: str, jaxlib_version: str, opt_out: Optional[str] = None) -> tuple[str, str]:
  """Returns ``(new XLA_FLAGS, why)``: XLA_FLAGS with the convolution choice added, or unchanged and why.

  Pure, so that tests can check every case without starting a backend.
  """
  if opt_out is not None and opt_out.strip().lower() in ('0', 'false', 'no', 'off'):
    return xla_flags, f'{OPT_OUT}={opt_out}: XLA:CPU keeps its default kernels'
  if f'--{FLAG}' in xla_flags:
    return xla_flags, f'XLA_FLAGS already sets --{FLAG}: kept as given'
  if _major_minor(jaxlib_version) not in MEASURED_JAXLIB:
    measured = ', '.join(f'{a}.{b}' for a, b in MEASURED_JAXLIB)
    return xla_flags, (f'jaxlib {jaxlib_version} is not one the CPU kernel choice was measured on ({measured}.x): '
                       'XLA:CPU keeps its default kernels')
  return f'{xla_flags} --{FLAG}={VALUE}'.strip(), f'XLA:CPU convolutions use XLA\'s emitter (--{FLAG}={VALUE})'


def apply(environ: MutableMapping[str, str] = os.environ) -> str:
  """Adds the CPU kernel choice to ``environ['XLA_FLAGS']`` if it applies; returns a line saying what happened.

  Call before the first JAX computation of the process (an entry point's
  first lines): once a backend has started, XLA has read its flags.
  """
  import jaxlib  # pylint: disable=g-import-not-at-top  # version only: starts no backend
  try:  # private, so guarded: it only makes the message accurate (a late XLA_FLAGS is ignored, not fatal)
    from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
    started = xla_bridge.backends_are_initialized()
  except (ImportError, AttributeError):
    started = False
  if started:
    return 'JAX backends already started: XLA:CPU keeps the kernels it started with'
  flags, why = cpu_kernel_flags(environ.get('XLA_FLAGS', ''), jaxlib.__version__, environ.get(OPT_OUT))
  if flags:
    environ['XLA_FLAGS'] = flags
  return why
