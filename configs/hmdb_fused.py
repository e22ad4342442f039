r"""HMDB51 split 1 with fused multi-scale samples: configs/hmdb.py where a sample is a global grid + a local view.

  python -m scfa_jax.main --config=configs/hmdb_fused.py --workdir=/tmp/scfa_hmdb_fused \
      --config.data.manual_dir=/path/to/hmdb51_downloads

Run from the repository root (it imports configs/). A sample of a video is the paper's 4x4 grid of 56 px tiles (16 frames over the
whole video) and one local view: 4 consecutive frames in a 2x2 grid of 112 px
tiles, both 224x224, through the shared ResNet-50; their pooled features are
concatenated (4,096 wide) into the one video feature that SupCon, the probe,
kNN, retrieval and fine-tuning see. Frames are stored at 112 px
(``data.shorter_side=112``, built as config ``split1_s112``; the default 56 px
store would only upscale them for the local view, adding no detail).
The pathways are weighed as in ``configs/demo_fused_weighted.py`` (the global
grid's own SupCon term at 0.5, the local view's half of the video feature at
0.5), which beat plain concatenation on both synthetic datasets
(docs/multiscale.md); on HMDB51 that is not measured yet.

Compute (estimate, not measured: this project's machines have no GPU): a
pre-training step encodes 4 images per video instead of 2, fine-tuning and
evaluation 2 instead of 1. 5,500 steps x 64 videos x 4 images = 1.41 M
ResNet-50 training passes plus 2,750 x 64 x 2 = 0.35 M for fine-tuning:
1.76 M, 2x configs/hmdb.py's 0.88 M, so roughly 30-60 min on one
A100/H100-class GPU with ``--config.model.dtype=bfloat16`` (plus decoding
twice the frames at 4x the pixels, which the input pipeline must keep up with).
"""

from configs import demo_fused
from configs import demo_fused_weighted
from configs import hmdb


def get_config():
  config = hmdb.get_config()
  config.data.shorter_side = 112
  return demo_fused_weighted.weigh_pathways(demo_fused.fuse_one_local_view(config))
