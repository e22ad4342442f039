r"""CPU demo with class-balanced batches: 4 classes x 8 videos in every batch of 32.

  python -m scfa_jax.main --config=configs/demo_balanced.py --workdir=/tmp/scfa_demo_balanced

configs/demo.py with ``data.balanced_batches_per_class=8``: every anchor has 7
same-class videos in its batch besides its own other view. The demo has only 6
classes, so 8 videos per class (4 classes per batch of 32) is the smallest M
that fits; with M=4 a batch would need 8 classes. Run from the repository root
(it imports configs/demo.py).
"""

from configs import demo


def get_config():
  config = demo.get_config()
  config.data.balanced_batches_per_class = 8
  return config
