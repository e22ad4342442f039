r"""Self-supervised SCFA on fused multi-scale samples, for synthetic_detail (docs/self_supervised.md).

  python -m scfa_jax.main --config=configs/demo_ssl_fused.py --workdir=/tmp/scfa_demo_ssl_fused \
      --config.data.name=synthetic_detail

configs/demo_ssl.py (instance contrast over 4 samplings a video, per-view
colour jitter, Adam at 8e-3, no label read in training) where a sample is
configs/demo_fused.py's: the demo's global grid (24 px tiles: the direction
of motion) and one local view (4 consecutive frames at 48 px: the 1-pixel
textures of synthetic_detail), through one ResNet, features concatenated.
Random crops apply to the global grid only
(``data.augment.crop_local_views=False``): resizing a crop blurs the 1-pixel
textures the local view is there for.

The global grid also has an instance term of its own
(``loss.pathway_aux_weight=1``, ``local_aux_weight=0``: a projection head on
the grid's feature, the same samplings as positives). Without it instance
contrast learns the texture on every seed and the direction of motion on one
of three: once the texture tells the samplings of a video from the others,
the fused loss gains little from the motion (feature suppression). The grid
cannot see the texture, and its colours and positions are redrawn per view,
so its own term can only match samplings by how things move. Figures:
docs/self_supervised.md and docs/semi_supervised.md. A step encodes 8 images a
video (configs/demo_fused.py 4). Run from the repository root (it imports
configs/).
"""

from configs import demo_fused
from configs import demo_ssl


def get_config():
  config = demo_fused.fuse_one_local_view(demo_ssl.get_config())
  config.data.augment.crop_local_views = False
  config.loss.update(pathway_aux_weight=1.0, local_aux_weight=0.0)
  return config
