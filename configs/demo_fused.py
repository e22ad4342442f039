r"""CPU demo of fused multi-scale samples: configs/demo.py where one sample of a video is a global grid + a local view.

  python -m scfa_jax.main --config=configs/demo_fused.py --workdir=/tmp/scfa_demo_fused \
      --config.data.name=synthetic_detail

A sample is the demo's global grid (16 frames over the whole clip, 24 px
tiles) and one local view (4 consecutive frames in a 2x2 grid of 48 px tiles,
the same 96x96 image); both go through the one ResNet and their pooled
features are concatenated into ONE video feature (``model.fusion``), which the
projection head, SupCon and every evaluation protocol see. SupCon's two views
are two independent samplings of the video (other frames for the grid and
another run for the local view). A step encodes 4 images per video (the demo
2) and scoring a test video 2 (the demo 1). Batch, epochs and optimiser are
the demo's. Run from the repository root (it imports configs/demo.py).
"""

from configs import demo


def fuse_one_local_view(config):
  """A sample = the global grid + 4 consecutive frames in a 2x2 grid, concatenated (also configs/hmdb_fused.py)."""
  config.data.num_local_views = 1
  config.data.local_grid = 2
  config.data.local_frames_stride = 1
  config.data.fuse_local_views = True
  config.model.fusion = 'concat'
  return config


def get_config():
  return fuse_one_local_view(demo.get_config())
