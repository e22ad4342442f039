r"""Baseline of the CPU demo: cross-entropy on the same grids, no contrastive stage.

  python -m scfa_jax.main --config=configs/demo_ce.py --workdir=/tmp/scfa_demo_ce

configs/demo.py with ``loss.name='cross_entropy'``: the same pipeline, backbone,
views and schedule, but the encoder learns through a classifier head. The
evaluation adds the "classifier" protocol (the head's own predictions) to the
frozen-encoder ones. Run from the repository root (it imports configs/demo.py).
"""

from configs import demo


def get_config():
  config = demo.get_config()
  config.loss.name = 'cross_entropy'
  return config
