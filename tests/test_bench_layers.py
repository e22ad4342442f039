"""bench layers: the ResNet's distinct convolutions, timed in JAX and PyTorch and totalled per step."""

import importlib.util

import pytest

from scfa_jax.bench import layers


def test_resnet50_layers_are_its_53_convolutions_and_its_macs():
  table = layers.resnet_layers(50, 224)
  assert sum(count for _, count in table) == 53  # stem + 16 blocks x 3 + 4 projections
  macs = sum(count * (-(-side // stride))**2 * cin * cout * k * k for (side, cin, cout, k, stride), count in table)
  assert abs(macs / 4.09e9 - 1) < 0.01  # ResNet-50's published 4.1 GMACs, less the 2 M of its classifier
  assert ((56, 64, 64, 3, 1), 3) in table and ((56, 128, 128, 3, 2), 1) in table and ((224, 3, 64, 7, 2), 1) in table


def test_basic_block_resnets_are_refused_in_one_line():
  with pytest.raises(ValueError, match='bottleneck'):
    layers.resnet_layers(18, 224)


@pytest.mark.parametrize('with_torch', [False, pytest.param(True, marks=pytest.mark.skipif(
    importlib.util.find_spec('torch') is None, reason='needs torch (the bench extra)'))])
@pytest.mark.slow
def test_a_tiny_run_times_every_layer_and_totals_them(with_torch):
  results = layers.run(depth=50, image_size=32, batch=1, width=4, reps=1, with_torch=with_torch)
  assert results['grids'] == 2 and results['torch_error'] is None
  frameworks = ('jax', 'torch') if with_torch else ('jax',)
  assert set(results['per_step_totals_ms']) == set(frameworks)
  for row in results['rows']:
    for name in frameworks:
      assert set(row[name]) == {'fwd_ms', 'dx_ms', 'dw_ms'} and all(v >= 0 for v in row[name].values())
  for name in frameworks:
    assert results['per_step_totals_ms'][name]['fwd_ms'] == pytest.approx(
        sum(r[name]['fwd_ms'] * r['count'] for r in results['rows']), abs=0.2)
  table = layers.format_table(results)
  assert '7x7/2 3->4 @32' in table and 'per step, jax' in table


@pytest.mark.slow(seconds=17)  # times every ResNet-50 layer in JAX (17 s on the 2-core AVX2 machine)
def test_without_torch_it_says_how_to_install_it(monkeypatch):
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'torch' else real_find_spec(name, *a))
  results = layers.run(depth=50, image_size=32, batch=1, width=4, reps=1, with_torch=True)
  assert 'pip install -e ".[bench]"' in results['torch_error'] and 'PyTorch not timed' in layers.format_table(results)
