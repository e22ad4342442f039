r"""HMDB51 split 1 without labels: self-supervised SCFA with the paper's backbone (docs/self_supervised.md).

  python -m scfa_jax.main --config=configs/hmdb_ssl.py --workdir=/tmp/scfa_hmdb_ssl \
      --config.data.manual_dir=/path/to/hmdb51_downloads

configs/hmdb.py (ResNet-50, 16 frames at 56 px in a 4x4 grid, batch 64, 100
epochs, Adam + cosine), trained from scratch (ImageNet weights would bring
ImageNet's labels back in) with configs/demo_ssl.py's ``self_supervised``
objective (its earlier 2-view setting; the demo's 4 views and learning rate
of 8e-3 are a finding on a 1/8-width ResNet-10, not carried over untested)
plus MoCo's key encoder: instance contrast at t = 0.1,
colour jitter and random crops drawn per view, every video's backwards-played
grid as a hard negative (one extra grid per video), a momentum key encoder
(0.99 -> 1, cosine) and a queue of 4,096 keys (64 steps of 64 videos x 2
views). Labels are read only by
the evaluation: linear probe, kNN and the fine-tune of configs/hmdb.py.

Not measured. Compute estimate: per video and step, 3 grids through the
trained ResNet-50 (2 views + the backwards grid: 3 training passes) and 3
forward-only passes of the key encoder (about 1 training pass), so ~4 passes
against the supervised recipe's 2: about 3,570 x 100 x 4 = 1.4 M ResNet-50
training passes at 224x224, twice configs/hmdb.py's pre-training, roughly
30-60 min on one A100/H100-class GPU with --config.model.dtype=bfloat16 if the
input pipeline keeps up (it decodes 48 JPEG frames per video and step; on few
CPU cores decoding bounds the run), plus the 50-epoch fine-tune.
"""

from configs import demo_ssl
from configs import hmdb


def get_config():
  config = demo_ssl.self_supervised(hmdb.get_config())
  config.model.momentum = 0.99  # MoCo's key encoder pays off over long runs (it did not in 4-epoch demo runs)
  config.loss.queue_size = 4096
  return config
