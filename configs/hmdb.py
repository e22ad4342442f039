r"""HMDB51, official split 1, the paper's recipe on the honest protocol.

  python -m scfa_jax.main --config=configs/hmdb.py --workdir=/tmp/scfa_hmdb \
      --config.data.manual_dir=/path/to/hmdb51_downloads

ImageNet-pretrained ResNet-50 (port the weights first, see README "Pretrained
weights", then add --config.model.init_from=<dir>), 16 frames at 56 px in a 4x4
grid (224x224), SupCon t=0.07, batch 64, 100 epochs, Adam + cosine.
Pre-training sees the train split only; accuracies are on the test split.
Then, as the authors classified: fine-tuning of the whole network with a
Dense(256, relu) + softmax head, cross-entropy, 50 epochs, on the train split
(reported as "finetune" beside the frozen-encoder linear probe and kNN).
"""

from scfa_jax import config as base_config


def get_config():
  config = base_config.get_config()
  config.data.name = 'hmdb51'
  config.data.builder_config = 'split1'  # split1 | split2 | split3 (official 70/30 splits)
  config.model.classifier_hidden_dim = 256  # the authors' fine-tuning head: Dense(256, relu) -> classes
  config.eval.finetune_epochs = 50
  return config
