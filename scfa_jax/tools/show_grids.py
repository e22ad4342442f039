r"""Writes a PNG of training grids, both views side by side, to check by eye what the network sees.

  python -m scfa_jax.tools.show_grids --config=configs/demo.py --out=grids.png

Takes the same ``--config`` file and ``--config.<field>=<value>`` overrides as
``scfa_jax.main``. The grids are the pipeline's uint8 output, exactly what is
sent to the devices; the title names the pixel normalisation the train step
then applies on the device.
"""

from __future__ import annotations

import textwrap
from typing import BinaryIO, Sequence, Union

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Command-line flags, defined only when run as a program (importing must not claim --config)."""
  flags.DEFINE_string('out', 'grids.png', 'PNG file to write.')
  flags.DEFINE_integer('num_videos', 8, 'Videos shown (one row each).')
  flags.DEFINE_integer('batch_index', 0, 'Which batch of the training stream (0 = the first).')
  config_flags.DEFINE_config_file('config', None, 'Config file, e.g. configs/demo.py.', lock_config=True)


def training_batch(config: ml_collections.ConfigDict, *, num_videos: int, batch_index: int = 0) -> dict:
  """One training batch of ``num_videos`` videos, read from the whole train split.

  Returns:
    {'views': uint8 [B, 2, H, W, 3], 'label': int32 [B], 'class_names': list[str]}.
  """
  from scfa_jax import datasets  # pylint: disable=g-import-not-at-top
  from scfa_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  data = config.data.copy_and_resolve_references()
  data.cache = False  # one batch is read: nothing to cache
  builder = datasets.get_builder(data)
  dataset = input_pipeline.create_train_dataset(builder, data, local_batch_size=num_videos, seed=config.seed,
                                                start_step=batch_index, process_index=0, num_processes=1)
  batch = next(dataset.as_numpy_iterator())
  return {**batch, 'class_names': list(builder.info.features['label'].names)}


def describe(config: ml_collections.ConfigDict, preprocessing_mode: str) -> str:
  """The figure title: dataset, grid, sampling, augmentation and normalisation."""
  data = config.data
  augmentations = [name for name in ('random_crop', 'flip', 'brightness', 'contrast', 'saturation', 'hue')
                   if data.augment[name]]
  return (f'{data.name}{"/" + data.builder_config if data.builder_config else ""} {data.train_split}: '
          f'{data.grid_rows}x{data.grid_cols} grid of {data.tile_size} px tiles, {data.train_sampling} sampling'
          f'{", shuffled frames" if data.shuffle_frames else ""}; augmentation: '
          f'{", ".join(augmentations) if augmentations else "none"}\n'
          f'Raw uint8 pixels as sent to the devices; the train step then applies '
          f'{preprocessing_mode!r} normalisation.')


def plot_grids(views, labels, class_names: Sequence[str], title: str, out: Union[str, BinaryIO]) -> None:
  """Saves one row per video (view 1 | view 2, class name on the left) as a PNG into a path or file object."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top  (object API: no pyplot backend state)

  num, num_views, height, width = views.shape[:4]
  scale = max(1.0, 160.0 / height)  # small grids (tests, demo) are enlarged, pixels kept sharp
  inches = lambda px: px * scale / 100.0  # noqa: E731  (at dpi 100)
  fig_width = max(num_views * inches(width) + 1.6, 7.0)  # room for the title
  fig = Figure(figsize=(fig_width, num * (inches(height) + 0.3) + 1.0), dpi=100)
  axes = fig.subplots(num, num_views, squeeze=False)
  for i in range(num):
    for v in range(num_views):
      ax = axes[i, v]
      ax.imshow(views[i, v], interpolation='nearest')
      ax.set_xticks([])
      ax.set_yticks([])
      if i == 0:
        ax.set_title(f'view {v + 1}', fontsize=9)
    label = int(labels[i])
    name = class_names[label] if 0 <= label < len(class_names) else f'label {label}'
    axes[i, 0].set_ylabel(f'{name}\n({label})', fontsize=8, rotation=0, ha='right', va='center')
  fig.suptitle('\n'.join(textwrap.fill(line, 110) for line in title.splitlines()), fontsize=8)
  fig.tight_layout()
  fig.savefig(out, format='png')


def show_grids(config: ml_collections.ConfigDict, out: str, *, num_videos: int = 8, batch_index: int = 0) -> str:
  """Writes the PNG for ``config``; returns the normalisation mode it names."""
  from scfa_jax.training import init_from  # pylint: disable=g-import-not-at-top
  mode = init_from.preprocessing(config)
  batch = training_batch(config, num_videos=num_videos, batch_index=batch_index)
  plot_grids(batch['views'], batch['label'], batch['class_names'], describe(config, mode), out)
  return mode


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  from scfa_jax import console  # pylint: disable=g-import-not-at-top
  console.configure(filter_native_stderr=True)  # before TensorFlow starts: no C++ start-up lines
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')
  config = FLAGS.config
  if config is None:
    raise app.UsageError('--config is required, e.g. --config=configs/demo.py.')
  mode = show_grids(config, FLAGS.out, num_videos=FLAGS.num_videos, batch_index=FLAGS.batch_index)
  print(f'Wrote {FLAGS.out}: {FLAGS.num_videos} videos x 2 views of {config.data.name}; '
        f'normalisation on device: {mode}.')


if __name__ == '__main__':
  define_flags()
  app.run(main)
