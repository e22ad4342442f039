r"""CPU demo without labels: self-supervised SCFA on synthetic_motion (docs/self_supervised.md).

  python -m scfa_jax.main --config=configs/demo_ssl.py --workdir=/tmp/scfa_demo_ssl

configs/demo.py with every label-free part on: instance contrast (the
positive of a view is the other sampling of the same video; no label is read
during training; t = 0.1 as CVRL), the three temporal pretext tasks on one
extra grid per video (arrow of time, playback speed among strides 1-2,
shuffled order), and a momentum key encoder (0.99, cosine to 1) whose keys fill
a queue of 256. Labels are read only by the evaluation (linear probe, kNN),
which embeds with the online encoder. Run from the repository root (it
imports configs/demo.py).
"""

from configs import demo


def get_config():
  return self_supervised(demo.get_config(), queue_size=256)


def self_supervised(config, *, queue_size):
  """Every label-free part on (configs/hmdb_ssl.py applies the same to the paper's recipe)."""
  config.loss.positives = 'video'
  config.loss.temperature = 0.1
  config.loss.base_temperature = 0.1
  config.loss.pretext.update(arrow_of_time=1.0, speed=1.0, shuffle=1.0, speed_classes=2)
  config.model.momentum = 0.99
  config.loss.queue_size = queue_size
  return config
