r"""CPU demo at a small batch with a SupCon memory queue.

  python -m scfa_jax.main --config=configs/demo_queue.py --workdir=/tmp/scfa_demo_queue

configs/demo.py at batch 8 (instead of 32) plus a queue of the last 48
projections: each anchor is then contrasted against 16 + 48 = 64 projections,
as many as batch 32 gives without a queue. Compare with the same config and
``--config.loss.queue_size=0`` (batch 8 alone) and with configs/demo.py
(batch 32), all for the same number of epochs. Run from the repository root
(it imports configs/demo.py).
"""

from configs import demo


def get_config():
  config = demo.get_config()
  config.train.batch_size = 8
  config.loss.queue_size = 48
  return config
