r"""Penn Action, official train/test flag, the paper's recipe.

  python -m scfa_jax.main --config=configs/penn_action.py --workdir=/tmp/scfa_penn \
      --config.data.manual_dir=/path/to/Penn_Action_download

ImageNet-pretrained ResNet-50 (--config.model.init_from=<ported dir>), 16
frames at 56 px in a 4x4 grid, SupCon t=0.07, batch 64, 100 epochs, Adam + cosine.
Then, as the authors classified: fine-tuning of the whole network with a
Dense(256, relu) + softmax head, cross-entropy, 50 epochs, on the train split
(reported as "finetune" beside the frozen-encoder linear probe and kNN).
"""

from scfa_jax import config as base_config


def get_config():
  config = base_config.get_config()
  config.data.name = 'penn_action'
  config.model.classifier_hidden_dim = 256  # the authors' fine-tuning head: Dense(256, relu) -> classes
  config.eval.finetune_epochs = 50
  return config
