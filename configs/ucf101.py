r"""UCF101, official split 1, the paper's recipe on the honest protocol.

  python -m scfa_jax.main --config=configs/ucf101.py --workdir=/tmp/scfa_ucf101 \
      --config.data.manual_dir=/path/to/ucf101_downloads

Built offline on first use from UCF101.rar and
UCF101TrainTestSplits-RecognitionTask.zip (or their extracted folders) by our
``ucf101_manual`` builder; TFDS' own ``ucf101`` downloads at build time and is
not used. ImageNet-pretrained ResNet-50 (--config.model.init_from=<ported dir>),
16 frames at 56 px in a 4x4 grid, SupCon t=0.07, batch 64, 100 epochs.
"""

from scfa_jax import config as base_config


def get_config():
  config = base_config.get_config()
  config.data.name = 'ucf101_manual'
  config.data.builder_config = 'split1'  # split1 | split2 | split3 (official train/test lists)
  return config
