r"""CPU demo with multi-scale views: configs/demo.py plus one local view per video.

  python -m scfa_jax.main --config=configs/demo_multiscale.py --workdir=/tmp/scfa_demo_multiscale

Beside the demo's two global grids (16 frames over the whole clip, 24 px
tiles), every training video gives a local view: 4 consecutive frames in a
2x2 grid of 48 px tiles, an image of the same 96x96 size. All three views of a
video, and all views of its class, are SupCon positives. Batch, epochs and
evaluation (on the global grid) are the demo's, so a step costs 1.5x the
demo's compute. Run from the repository root (it imports configs/demo.py).
"""

from configs import demo


def get_config():
  config = demo.get_config()
  config.data.num_local_views = 1
  config.data.local_grid = 2
  config.data.local_frames_stride = 1
  return config
