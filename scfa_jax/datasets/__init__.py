"""Dataset builders and the one function that turns ``config.data`` into a builder.

Builders are listed explicitly in ``BUILDERS`` (no registration by import side
effect); any other name is looked up in TFDS itself. UCF101 is ``ucf101_manual``
(ours, built offline from the official files), not TFDS' downloading ``ucf101``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import pathlib
from typing import Iterator

import filelock
import ml_collections
import tensorflow_datasets as tfds

from scfa_jax import console
from scfa_jax import errors
from scfa_jax import storage
from scfa_jax.datasets import common
from scfa_jax.datasets.clip_builder import ClipBuilder
from scfa_jax.datasets.hmdb51.hmdb51 import Hmdb51
from scfa_jax.datasets.kinetics.kinetics import Kinetics
from scfa_jax.datasets.penn_action.penn_action import PennAction
from scfa_jax.datasets.ssv2.ssv2 import Ssv2
from scfa_jax.datasets.synthetic_detail.synthetic_detail import SyntheticDetail
from scfa_jax.datasets.synthetic_motion.synthetic_motion import SyntheticMotion
from scfa_jax.datasets.ucf101.ucf101 import Ucf101Manual
from scfa_jax.datasets.video_folder import video_folder as video_folder_lib
from scfa_jax.datasets.video_folder.video_folder import VideoFolder

BUILDERS: dict[str, type[tfds.core.GeneratorBasedBuilder]] = {
    'synthetic_motion': SyntheticMotion,
    'synthetic_detail': SyntheticDetail,
    'hmdb51': Hmdb51,
    'penn_action': PennAction,
    'ucf101_manual': Ucf101Manual,
    'video_folder': VideoFolder,
    'kinetics': Kinetics,
    'ssv2': Ssv2,
}


@dataclasses.dataclass(frozen=True)
class FrameStorage:
  """How the dataset of ``config.data`` stores a video's frames: what inference reproduces for a source video.

  Attributes:
    side: real-video builders squash every frame to ``side`` x ``side``
      (``config.data.shorter_side``, 56 by default; ``ClipBuilder``).
    own_size: generated datasets store frames at their own (small) size;
      inference then keeps frames up to ``side`` as they are and shrinks only
      larger ones (those have no stored twin; shrinking keeps them cheap).
    jpeg_quality: the JPEG quality of ``common.make_example``, which every
      builder of ``BUILDERS`` stores through; None for other TFDS datasets,
      which store frames their own way (TFDS videos: lossless PNG).
  """

  side: int
  own_size: bool
  jpeg_quality: int | None


def frame_storage(data_config: ml_collections.ConfigDict) -> FrameStorage:
  builder_cls = BUILDERS.get(data_config.name)
  return FrameStorage(side=int(data_config.get('shorter_side', 0) or common.DEFAULT_SHORTER_SIDE),
                      own_size=builder_cls is None or not issubclass(builder_cls, ClipBuilder),
                      jpeg_quality=None if builder_cls is None else common.DEFAULT_JPEG_QUALITY)


def get_builder(data_config: ml_collections.ConfigDict, *, beam_pipeline_options: str = '') -> tfds.core.DatasetBuilder:
  """Returns the builder named by ``data_config.name``, prepared on disk.

  A dataset that is not yet prepared is built on first use: generated ones
  (synthetic_motion) always, manual ones when ``data_config.manual_dir`` says
  where the downloaded files are. ``beam_pipeline_options`` (e.g.
  ``'runner=DirectRunner,direct_num_workers=2'``) builds real-video datasets on
  Apache Beam instead of in this process (the ``beam`` extra; docs/scale.md).
  """
  kwargs = {}
  if data_config.data_dir:
    kwargs['data_dir'] = os.path.expanduser(data_config.data_dir)
  if data_config.builder_config:
    kwargs['config'] = data_config.builder_config
  elif data_config.name == 'video_folder' and data_config.manual_dir and video_folder_lib.is_unlabelled_folder(
      pathlib.Path(os.path.expanduser(data_config.manual_dir))):
    logging.info('%s holds videos and no class subfolder: building the unlabelled video_folder config.',
                 data_config.manual_dir)
    kwargs['config'] = video_folder_lib.UNLABELLED_CONFIG
  if data_config.name in BUILDERS:
    builder_cls = BUILDERS[data_config.name]
    if issubclass(builder_cls, ClipBuilder):  # Datasets decoded from real clips.
      kwargs.update(shorter_side=data_config.shorter_side, max_bad_fraction=data_config.max_bad_fraction,
                    max_missing_fraction=data_config.get('max_missing_fraction'))
    make = functools.partial(builder_cls, **kwargs)
  else:
    make = functools.partial(tfds.builder, data_config.name, **kwargs)
  try:
    builder = make()
  except tfds.core.registered.DatasetNotFoundError:
    raise errors.ConfigError(
        f'config.data.name={data_config.name!r} is not allowed: expected one of {", ".join(sorted(BUILDERS))} '
        'or the name of a TFDS dataset (https://www.tensorflow.org/datasets/catalog).') from None
  if builder.is_prepared():
    return builder
  download_config = None
  if data_config.manual_dir or beam_pipeline_options:
    download_config = tfds.download.DownloadConfig(
        manual_dir=os.path.expanduser(data_config.manual_dir) if data_config.manual_dir else None,
        beam_options=beam_options(beam_pipeline_options))
  with _prepare_lock(builder):
    builder = make()  # Read afresh: another process may have prepared it while this one waited.
    if not builder.is_prepared():
      download = builder.info.download_size
      logging.info('Preparing dataset %s in %s%s', builder.info.full_name, builder.data_dir,
                   f' (downloading {download})' if download else '')
      with console.without_library_prints():  # TFDS' own banner says "Downloading" even when nothing is
        builder.download_and_prepare(download_config=download_config)
  return builder


def beam_options(flags: str):
  """``'runner=DirectRunner,direct_num_workers=2'`` -> Beam's PipelineOptions (as ``tfds build`` reads them); '' -> None."""
  if not flags:
    return None
  try:
    from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise errors.MissingDependencyError('Building on Beam needs Apache Beam: pip install "scfa_jax[beam]".') from None
  return pipeline_options.PipelineOptions(flags=[f'--{option.strip()}' for option in flags.split(',') if option.strip()])


@contextlib.contextmanager
def _prepare_lock(builder: tfds.core.DatasetBuilder) -> Iterator[None]:
  """Held while one process prepares ``builder``'s dataset; others wait, then reuse it.

  The lock is a file next to the dataset, so whoever shares the folder shares
  the lock: on a shared data_dir one host builds while the others wait; on
  per-host disks every host builds its own copy. Never two writers on one
  folder, without knowing the topology. A remote data_dir (gs://) cannot hold
  a file lock: there process 0 builds and the others wait at a barrier.
  """
  root = os.fspath(builder.data_dir_root)
  config_name = builder.builder_config.name if builder.builder_config else 'default'
  if storage.is_remote(root):
    import jax  # pylint: disable=g-import-not-at-top
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    if jax.process_index() != 0:
      multihost_utils.sync_global_devices(f'prepare {builder.name}/{config_name}')
    yield
    if jax.process_index() == 0:
      multihost_utils.sync_global_devices(f'prepare {builder.name}/{config_name}')
    return
  os.makedirs(root, exist_ok=True)
  lock = filelock.FileLock(os.path.join(root, f'.{builder.name}-{config_name}.lock'))
  try:
    lock.acquire(timeout=1)
  except filelock.Timeout:
    logging.info('Waiting for another process to prepare %s (lock %s).', builder.name, lock.lock_file)
    lock.acquire()
  try:
    yield
  finally:
    lock.release()
