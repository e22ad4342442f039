r"""Self-supervised SCFA on fused multi-scale samples, for synthetic_detail (docs/self_supervised.md).

  python -m scfa_jax.main --config=configs/demo_ssl_fused.py --workdir=/tmp/scfa_demo_ssl_fused \
      --config.data.name=synthetic_detail

configs/demo_ssl.py (instance contrast over 4 samplings a video, per-view
colour jitter, Adam at 8e-3, no label read in training) where a sample is
configs/demo_fused.py's: the demo's global grid (24 px tiles: the direction
of motion) and one local view (4 consecutive frames at 48 px: the 1-pixel
textures of synthetic_detail), through one ResNet, features concatenated.
Random crops are off: resizing a crop blurs the 1-pixel textures the local
view is there for, and with crops the probe read 44.7% (seed 0) against
53.3% without.

What it shows is a limit of instance contrast, not a recipe to copy: on
synthetic_detail it reads about half (seeds 0-2 in docs/self_supervised.md)
where supervised SCFA on the same samples reads 98%. Two samplings of a video
are told from other videos by where things are and how big they are; the
texture, one of three values, tells few videos apart, so the encoder learns
little of it, and supervised SCFA with a tenth of the labels beats it
(docs/semi_supervised.md). A step encodes 8 images a video (configs/demo_fused.py
4). Run from the repository root (it imports configs/).
"""

from configs import demo_fused
from configs import demo_ssl


def get_config():
  config = demo_fused.fuse_one_local_view(demo_ssl.get_config())
  config.data.augment.crop_local_views = False
  return config
