"""The XLA:CPU kernel choice that entry points set before JAX starts (scfa_jax.xla_cpu)."""

import os
import subprocess
import sys

import jaxlib
import numpy as np
import pytest

from scfa_jax import xla_cpu

CHOICE = f'--{xla_cpu.FLAG}={xla_cpu.VALUE}'


def test_added_on_a_measured_jaxlib_and_other_flags_kept():
  flags, why = xla_cpu.cpu_kernel_flags('--xla_force_host_platform_device_count=8', '0.10.2')
  assert flags.split() == ['--xla_force_host_platform_device_count=8', CHOICE]
  assert 'XLA\'s emitter' in why
  assert xla_cpu.cpu_kernel_flags('', '0.10.0rc1')[0] == CHOICE


@pytest.mark.parametrize('xla_flags', [f'--{xla_cpu.FLAG}=', f'--{xla_cpu.FLAG}=individual_dot --xla_cpu_ftz=true'])
def test_a_users_own_setting_wins(xla_flags):
  flags, why = xla_cpu.cpu_kernel_flags(xla_flags, '0.10.2')
  assert flags == xla_flags and 'kept as given' in why


@pytest.mark.parametrize('version', ['0.9.1', '0.11.0', '1.0.0', 'unknown'])
def test_other_jaxlib_versions_keep_xlas_defaults(version):
  # An unknown XLA flag aborts the process, so unmeasured versions get nothing.
  flags, why = xla_cpu.cpu_kernel_flags('--xla_cpu_ftz=true', version)
  assert flags == '--xla_cpu_ftz=true' and version in why


@pytest.mark.parametrize('value', ['0', 'false', 'OFF'])
def test_opt_out(value):
  flags, why = xla_cpu.cpu_kernel_flags('', '0.10.2', opt_out=value)
  assert flags == '' and xla_cpu.OPT_OUT in why
  assert xla_cpu.cpu_kernel_flags('', '0.10.2', opt_out='1')[0] == CHOICE


def test_apply_sets_the_environment_only_before_backends_start():
  env = {'XLA_FLAGS': '--xla_cpu_ftz=true'}
  import jax  # pylint: disable=g-import-not-at-top
  jax.devices()  # this test process has started its backend: too late to change kernels
  assert 'already started' in xla_cpu.apply(env)
  assert env == {'XLA_FLAGS': '--xla_cpu_ftz=true'}


@pytest.mark.skipif(xla_cpu._major_minor(jaxlib.__version__) not in xla_cpu.MEASURED_JAXLIB,
                    reason='the installed jaxlib is not one the choice applies to')
def test_the_installed_jaxlib_accepts_the_flag_and_convolutions_agree(tmp_path):
  """A renamed flag or value would abort every CPU run: a strided convolution and its gradients, both ways."""
  script = """
import os, sys
from scfa_jax import xla_cpu
xla_cpu.apply()
assert (xla_cpu.FLAG in os.environ.get('XLA_FLAGS', '')) == (sys.argv[2] == 'chosen'), os.environ.get('XLA_FLAGS')
import jax, jax.numpy as jnp, numpy as np
x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 9, 9, 4)), jnp.float32)
w = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, 4, 5)), jnp.float32)
conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)),
                                                 dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
y, (dx, dw) = jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(conv(x, w) ** 2), (0, 1)))(x, w)
np.save(sys.argv[1], np.concatenate([np.ravel(y), np.ravel(dx), np.ravel(dw)]))
"""
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', xla_cpu.OPT_OUT)}
  results = {}
  for kernels, opt_out in (('chosen', '1'), ('default', '0')):
    out = tmp_path / f'{kernels}.npy'
    run = subprocess.run([sys.executable, '-c', script, str(out), kernels],
                         env={**env, xla_cpu.OPT_OUT: opt_out, 'JAX_PLATFORMS': 'cpu'},
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    results[kernels] = np.load(out)
  np.testing.assert_allclose(results['chosen'], results['default'], rtol=1e-4, atol=1e-3)
