"""Dataset builders and the one function that turns ``config.data`` into a builder.

Builders are listed explicitly in ``BUILDERS`` (no registration by import side
effect); any other name is looked up in TFDS itself (e.g. ``ucf101``).
"""

from __future__ import annotations

import logging
import os

import ml_collections
import tensorflow_datasets as tfds

from scfa_jax.datasets.synthetic_motion.synthetic_motion import SyntheticMotion

BUILDERS: dict[str, type[tfds.core.GeneratorBasedBuilder]] = {
    'synthetic_motion': SyntheticMotion,
}


def get_builder(data_config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """Returns the builder named by ``data_config.name``, prepared on disk.

  A dataset that is not yet prepared is built on first use: generated ones
  (synthetic_motion) always, manual ones when ``data_config.manual_dir`` says
  where the downloaded files are.
  """
  kwargs = {}
  if data_config.data_dir:
    kwargs['data_dir'] = os.path.expanduser(data_config.data_dir)
  if data_config.builder_config:
    kwargs['config'] = data_config.builder_config
  if data_config.name in BUILDERS:
    builder = BUILDERS[data_config.name](**kwargs)
  else:
    builder = tfds.builder(data_config.name, **kwargs)
  if not builder.is_prepared():
    download_config = None
    if data_config.manual_dir:
      download_config = tfds.download.DownloadConfig(manual_dir=os.path.expanduser(data_config.manual_dir))
    logging.info('Preparing dataset %s in %s', builder.info.full_name, builder.data_dir)
    builder.download_and_prepare(download_config=download_config)
  return builder
