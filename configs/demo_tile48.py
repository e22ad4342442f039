r"""CPU demo with more detail in one image: configs/demo.py with 48 px tiles (192x192 grids).

  python -m scfa_jax.main --config=configs/demo_tile48.py --workdir=/tmp/scfa_demo_tile48 \
      --config.data.name=synthetic_detail

The "one bigger grid" alternative to fused multi-scale samples
(configs/demo_fused.py): the same 16 frames over the whole clip, each at
synthetic_detail's full 48 px, so one image sees both the order and the fine
texture, at 4x the demo's pixels (and about 4x its forward compute) per image.
Run from the repository root (it imports configs/demo.py).
"""

from configs import demo


def get_config():
  config = demo.get_config()
  config.data.tile_size = 48
  return config
