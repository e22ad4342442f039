r"""Baseline of the CPU demo: SupCon on grids whose frame order is destroyed.

  python -m scfa_jax.main --config=configs/demo_shuffled.py --workdir=/tmp/scfa_demo_shuffled

configs/demo.py with ``data.shuffle_frames=True``: the same 16 frames per view,
tiled in a random order (training and evaluation alike), so a model can use
what the frames show but not when. Run from the repository root (it imports
configs/demo.py).
"""

from configs import demo


def get_config():
  config = demo.get_config()
  config.data.shuffle_frames = True
  return config
