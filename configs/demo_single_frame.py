r"""Baseline of the CPU demo: one frame per view (a 1x1 "grid") with SupCon.

  python -m scfa_jax.main --config=configs/demo_single_frame.py --workdir=/tmp/scfa_demo_single_frame

configs/demo.py with a 1x1 grid whose tile is as large as the demo's whole
grid, so the network sees images of the same size and spends the same compute;
only time is taken away. The two SupCon views are two random frames of the
video, the evaluation view its middle frame. Run from the repository root (it
imports configs/demo.py).
"""

from configs import demo


def get_config():
  config = demo.get_config()
  grid_side = config.data.grid_rows * config.data.tile_size
  config.data.grid_rows = 1
  config.data.grid_cols = 1
  config.data.tile_size = grid_side
  return config
