r"""CPU demo: a tiny ResNet on the embedded synthetic_motion dataset (no download).

  python -m scfa_jax.main --config=configs/demo.py --workdir=/tmp/scfa_demo

Same code path as the paper configs; only sizes shrink: a ResNet-10 at 1/8
width, 16 frames of 24 px in a 4x4 grid (96x96 images), 15 epochs over 2,400
training clips. 24 px tiles (not 16) because the objects move about half a
pixel per tile at 16 px, too little to survive the ResNet stem's 4x
downsampling reliably.
"""

from scfa_jax import config as base_config


def get_config():
  config = base_config.get_config()
  config.data.name = 'synthetic_motion'
  config.data.tile_size = 24
  config.data.shuffle_buffer = 1024
  config.data.preprocessing = 'imagenet'

  config.model.depth = 10
  config.model.width = 8
  config.model.proj_hidden_dim = 128
  config.model.proj_dim = 64

  config.optim.learning_rate = 1e-3
  config.optim.warmup_epochs = 1.0

  config.train.batch_size = 32
  config.train.num_epochs = 15
  config.train.log_every_steps = 10

  config.ckpt.every_steps = 100
  config.ckpt.max_to_keep = 2

  config.eval.batch_size = 64
  config.eval.knn_k = 10
  return config
