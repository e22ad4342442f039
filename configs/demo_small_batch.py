r"""CPU demo at batch 8 without a queue: the reference for configs/demo_queue.py.

  python -m scfa_jax.main --config=configs/demo_small_batch.py --workdir=/tmp/scfa_demo_small_batch

configs/demo.py at batch 8 (instead of 32) for the same 15 epochs, so each
anchor is contrasted against the 16 projections of its own batch only. Beside
configs/demo_queue.py (batch 8 + a queue of 48) and configs/demo.py (batch 32)
it shows what the queue buys at a small batch. Run from the repository root
(it imports configs/demo.py).
"""

from configs import demo


def get_config():
  config = demo.get_config()
  config.train.batch_size = 8
  return config
