r"""Baseline of the CPU demo: TSN, 8 frames encoded one by one, class scores averaged.

  python -m scfa_jax.main --config=configs/demo_tsn.py --workdir=/tmp/scfa_demo_tsn

Temporal Segment Networks (Wang et al., 2016) on the demo's pipeline and
backbone: one frame from each of K=8 equal segments (the same ``segment``
sampling the grids use; segment centres at evaluation), each frame through the
ResNet on its own, the per-frame class scores averaged and trained with
cross-entropy. The frames travel through the pipeline as a 2x4 grid that the
model cuts back into frames (``model.per_frame``). Frames are 32 px, so the 8
frames hold 8,192 pixels against the demo grid's 9,216 (96x96): about the same
compute per video (results.json ``compute`` has the exact count). The frozen
encoder protocols (probe, kNN, retrieval) use the mean of the 8 frame
features. Run from the repository root (it imports configs/demo.py).
"""

from configs import demo


def get_config():
  config = demo.get_config()
  config.loss.name = 'cross_entropy'
  config.model.per_frame = True
  config.data.grid_rows = 2
  config.data.grid_cols = 4
  config.data.tile_size = 32
  return config
