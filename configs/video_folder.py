r"""Your own videos: one subfolder per class, optional train.txt/test.txt lists.

  python -m scfa_jax.main --config=configs/video_folder.py --workdir=/tmp/scfa_mine \
      --config.data.manual_dir=/path/to/my_videos --config.data.data_dir=/path/to/my_tfds

Give each folder of videos its own data_dir: the prepared dataset is stored as
video_folder/default there and reused on later runs. Without lists, 30% of each
class goes to 'test' (see scfa_jax/datasets/video_folder). Same recipe as the
paper configs: ResNet-50, 16 frames at 56 px in a 4x4 grid, SupCon t=0.07.
"""

from scfa_jax import config as base_config


def get_config():
  config = base_config.get_config()
  config.data.name = 'video_folder'
  return config
