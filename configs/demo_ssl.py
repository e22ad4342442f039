r"""CPU demo without labels: self-supervised SCFA on synthetic_motion (docs/self_supervised.md).

  python -m scfa_jax.main --config=configs/demo_ssl.py --workdir=/tmp/scfa_demo_ssl

configs/demo.py (same model, batch, 15 epochs) with the best label-free
setting measured (docs/self_supervised.md, "Measured": linear probe 95% on
seeds 0-2, against 96.6% supervised, at twice the supervised demo's images):
instance contrast (the positives of a view are the other samplings of the same
video; no label is read during training; t = 0.1 as CVRL) over 4 samplings a
video, strong colour jitter and random crops drawn per view, so the samplings
of a video do not share colours and positions (without them the probe reads
34-41%: the instance task is solved by appearance), and Adam at 8e-3, not the
supervised demo's 1e-3: at 1e-3 the same setting read 84.0%, at 4e-3 88.8%,
and 2 views with the backwards grid read 81.7% at 8e-3.
Pretext tasks and the backwards grid as a hard negative are off: at 1e-3 they
added a fifth grid a video for less than a point. The momentum key encoder
with a queue scored lower at this budget, so it is off here
(configs/hmdb_ssl.py, 100 epochs, turns it on). Labels are read only by the
evaluation (linear probe, kNN), which embeds with the online encoder. Run from
the repository root (it imports configs/demo.py).

The 2-view setting of earlier measurements (77.9% at 1e-3, 1.5x the demo's
images; the label-efficiency tables of docs/semi_supervised.md used it) is
``self_supervised(demo.get_config())``: pass
``--config.data.num_global_views=2 --config.loss.pretext.arrow_of_time=1.0
--config.loss.pretext.reversed_negatives=True --config.optim.learning_rate=0.001``.
"""

from configs import demo


def get_config():
  config = self_supervised(demo.get_config())
  config.data.num_global_views = 4
  config.loss.pretext.update(arrow_of_time=0.0, reversed_negatives=False)
  config.optim.learning_rate = 8e-3
  return config


def self_supervised(config):
  """Instance contrast at t = 0.1, per-view colour jitter and crops, backwards grids as hard negatives."""
  config.loss.positives = 'video'
  config.loss.temperature = 0.1
  config.loss.base_temperature = 0.1
  config.data.augment.update(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.5, random_crop=True)
  config.loss.pretext.update(arrow_of_time=1.0, reversed_negatives=True, backwards_share=1.0)
  return config
