r"""configs/demo_fused.py with attention fusion instead of concatenation.

  python -m scfa_jax.main --config=configs/demo_fused_attention.py --workdir=/tmp/scfa_demo_fused_attention \
      --config.data.name=synthetic_detail

The video feature is a learned softmax-weighted sum of the pathways' pooled
features (``models.fusion.Fuse``), as wide as one pathway's, instead of their
concatenation; measured against concatenation in docs/multiscale.md.
Run from the repository root (it imports configs/demo_fused.py).
"""

from configs import demo_fused


def get_config():
  config = demo_fused.get_config()
  config.model.fusion = 'attention'
  return config
