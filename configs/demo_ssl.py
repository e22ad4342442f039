r"""CPU demo without labels: self-supervised SCFA on synthetic_motion (docs/self_supervised.md).

  python -m scfa_jax.main --config=configs/demo_ssl.py --workdir=/tmp/scfa_demo_ssl

configs/demo.py with the best label-free setting measured so far (4-epoch
runs, seed 0; far below the supervised demo, see the docs page): instance
contrast (the positive of a view is the other sampling of the same video; no
label is read during training; t = 0.1 as CVRL) and the three temporal
pretext tasks on one extra grid per video (arrow of time, playback speed among
strides 1-2, shuffled order). The momentum key encoder with a queue scored
lower at that budget, so it is off here (configs/hmdb_ssl.py, 100 epochs,
turns it on). Labels are read only by the evaluation (linear probe, kNN),
which embeds with the online encoder. Run from the repository root (it
imports configs/demo.py).
"""

from configs import demo


def get_config():
  return self_supervised(demo.get_config())


def self_supervised(config):
  """Instance contrast at t = 0.1 and the three pretext tasks (configs/hmdb_ssl.py starts from these too)."""
  config.loss.positives = 'video'
  config.loss.temperature = 0.1
  config.loss.base_temperature = 0.1
  config.loss.pretext.update(arrow_of_time=1.0, speed=1.0, shuffle=1.0, speed_classes=2)
  return config
