"""``python -m scfa_jax.bench profile``: the real step's XLA ops, grouped by kind and direction."""

import json
import os
import subprocess
import sys

import pytest

from scfa_jax.bench import profile_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HLO = '''
ENTRY %main {
  %ynn_fusion.3 = f32[8,4]{1,0} fusion(%a), kind=kCustom, metadata={op_name="jit(f)/jvp(SCFAModel)/encoder/conv1/dot_general"}
  %transpose_copy_fusion.12 = f32[4,8]{1,0} fusion(%b), kind=kLoop, metadata={op_name="jit(f)/transpose(jvp(SCFAModel))/encoder/bn1/add_any"}
  ROOT %wrapped_iota = s32[4]{0} fusion(), kind=kLoop
}
'''


def test_directions_come_from_the_hlo_metadata():
  assert profile_step.hlo_directions(HLO) == {
      'ynn_fusion.3': 'forward', 'transpose_copy_fusion.12': 'backward', 'wrapped_iota': ''}


def test_summary_sums_events_per_step_by_kind_and_direction():
  events = [('ynn_fusion.3', 4_000_000), ('ynn_fusion.3', 2_000_000), ('transpose_copy_fusion.12', 3_000_000),
            ('wrapped_iota', 1_000_000)]
  summary = profile_step.summarize(iter(events), profile_step.hlo_directions(HLO), num_steps=2)
  assert summary['op_ms_per_step'] == 5.0
  assert summary['by_kind'][0] == {'kind': 'ynn_fusion', 'direction': 'forward', 'ms_per_step': 3.0, 'percent': 60.0}
  assert summary['by_kind'][1]['kind'] == 'transpose_copy_fusion'
  assert summary['by_kind'][1]['direction'] == 'backward'
  assert summary['top_ops'][0] == {'op': 'ynn_fusion.3', 'direction': 'forward', 'ms_per_step': 3.0}


@pytest.mark.slow
def test_profile_command_on_a_tiny_model():
  cmd = [sys.executable, '-m', 'scfa_jax.bench', 'profile', '--depth=10', '--width=4', '--image_size=32',
         '--batch=4', '--steps=2']
  proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS='cpu'), capture_output=True, text=True,
                        timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  r = json.loads(proc.stdout.strip().splitlines()[-1])
  assert r['bench'] == 'profile' and r['backend'] == 'cpu' and r['step_s'] > 0, r
  assert r['cores_busy'] > 0 and r['op_ms_per_step'] > 0, r
  kinds = {row['kind'] for row in r['by_kind']}
  assert any('fusion' in k or 'convolution' in k for k in kinds), kinds  # real XLA ops, not wrapper events
  assert {'forward', 'backward'} <= {row['direction'] for row in r['by_kind']}, r['by_kind']
  assert 'ms/step' in proc.stderr  # the table for the console
