r"""configs/demo_fused.py with a ResNet (and BatchNorm) of its own per pathway instead of one shared ResNet.

  python -m scfa_jax.main --config=configs/demo_fused_separate.py --workdir=/tmp/scfa_demo_fused_separate \
      --config.data.name=synthetic_detail

The same fused sample (the global grid + one local view, concatenated), but
the global grid's encoder no longer shares its weights and BatchNorm
statistics with the upscaled local frames: twice the encoder parameters, the
same compute per video. Measured against the shared ResNet in
docs/multiscale.md. Run from the repository root (it imports configs/demo_fused.py).
"""

from configs import demo_fused


def get_config():
  config = demo_fused.get_config()
  config.model.separate_pathways = True
  return config
