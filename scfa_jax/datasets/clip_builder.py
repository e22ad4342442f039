"""The builder base of every dataset decoded from real clips (HMDB51, UCF101, Penn Action, folders).

A subclass only finds its files and lists its clips per split; this base
decodes each clip once (``video_io``), stores it in the shared format
(``common.make_example``) and applies one bad-input policy everywhere:

* A clip that cannot be decoded is skipped, named in the log, and recorded in
  the build summary: the log line closing each split and the ``skipped_clips``
  entry of the prepared dataset's ``metadata.json``.
* If more than ``max_bad_fraction`` of a split's clips are skipped (or all of
  them), the build fails with the list: a half-extracted download should not
  train silently.
* A clip shorter than the 16 frames a view needs is kept: sampling repeats frames.

Beam: when the build is given Beam options (``DownloadConfig(beam_options=...)``,
``build_dataset --beam_pipeline_options=...``), ``_generate_examples`` returns a
Beam transform instead (``beam_clips``): the same examples from the same
decoding function, spread over Beam's workers. The skipped clips then leave the
workers as a side output (and as Beam counters, for the runner's UI), and the
policy above runs on them once the pipeline is done; the local build stays the
default.

Two knobs, both constructor arguments that ``scfa_jax.datasets.get_builder``
fills from ``config.data``: ``shorter_side`` changes what is stored, so a
non-default value builds a separate config named ``<config>_s<px>`` next to the
default one; ``max_bad_fraction`` only decides whether a build may finish.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import itertools
import logging
import os
import pathlib
from typing import Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from scfa_jax import errors
from scfa_jax.datasets import common
from scfa_jax.datasets import video_io

DEFAULT_MAX_BAD_FRACTION = 0.01
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
_MAX_LISTED = 50  # Bad clips named in the error message (the log names all).
_MAX_WORKERS = 8  # Threads decoding clips ahead of the writer.


@dataclasses.dataclass(frozen=True)
class Clip:
  """One clip to store: a video file, or a folder of frame images."""

  video_id: str  # Unique within the dataset; the example key and its 'video_id'.
  label: int | None  # None in a dataset without labels.
  path: pathlib.Path
  expected_frames: int = 0  # Frame count the annotations state (0 = unknown); a mismatch is logged.


@dataclasses.dataclass
class ClipBuilderConfig(tfds.core.BuilderConfig):
  """Fields shared by the configs of clip builders."""

  shorter_side: int = common.DEFAULT_SHORTER_SIDE  # Stored frames are squashed to squares of this side (px).


class BadClipsError(errors.UserError, RuntimeError):
  """Too many clips of a split could not be decoded."""


class MissingClipsError(errors.MissingFilesError):
  """Too many clips the annotations list are absent from the download."""


def frame_files(folder: pathlib.Path) -> list[pathlib.Path]:
  """The image files of a frame folder, sorted by name (zero-padded names sort in time order)."""
  return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_EXTENSIONS))


class ClipBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Decodes the clips a subclass lists; see the module docstring for the policy."""

  # Share of the annotated clips of a split that may be absent from the download (counted, logged, left out).
  # 0 for datasets distributed whole (a missing clip means a broken extraction); Kinetics overrides it.
  DEFAULT_MAX_MISSING_FRACTION = 0.0

  def __init__(self, *, shorter_side: int = 0, max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
               max_missing_fraction: float | None = None, config: str | ClipBuilderConfig | None = None, **kwargs):
    """Args beyond TFDS's: shorter_side (>0 overrides the config's), max_bad_fraction and
    max_missing_fraction (in [0, 1]; None = the builder's ``DEFAULT_MAX_MISSING_FRACTION``)."""
    for field, value in (('max_bad_fraction', max_bad_fraction), ('max_missing_fraction', max_missing_fraction)):
      if value is not None and not 0.0 <= value <= 1.0:
        raise errors.ConfigError(f'config.data.{field}={value!r} is not allowed: expected in [0, 1].')
    self._max_missing_fraction = (self.DEFAULT_MAX_MISSING_FRACTION if max_missing_fraction is None
                                  else max_missing_fraction)
    if shorter_side < 0:
      raise errors.ConfigError(f'config.data.shorter_side={shorter_side!r} is not allowed: expected >= 0 '
                               '(0 = the builder config\'s default).')
    self._max_bad_fraction = max_bad_fraction
    if shorter_side:
      config = self._config_with_shorter_side(config, shorter_side)
    super().__init__(config=config, **kwargs)

  @classmethod
  def _config_with_shorter_side(cls, config: str | ClipBuilderConfig | None, shorter_side: int) -> ClipBuilderConfig:
    if not isinstance(config, ClipBuilderConfig):
      name = config or cls.DEFAULT_CONFIG_NAME or cls.BUILDER_CONFIGS[0].name
      matches = [c for c in cls.BUILDER_CONFIGS if c.name == name]
      if not matches:
        raise errors.ConfigError(f'config.data.builder_config={name!r} is not allowed: {cls.name} has the configs '
                                 f'{[c.name for c in cls.BUILDER_CONFIGS]}.')
      config = matches[0]
    if config.shorter_side == shorter_side:
      return config
    return dataclasses.replace(config, name=f'{config.name}_s{shorter_side}', shorter_side=shorter_side,
                               description=f'{config.description} Frames stored as {shorter_side}x{shorter_side} px squares.')

  def _clip_info(self, *, class_names: Sequence[str] | None, description: str,
                 homepage: str = '', citation: str = '', labelled: bool = True) -> tfds.core.DatasetInfo:
    """The DatasetInfo of a clip dataset; ``class_names=None`` lets ``_split_generators`` name them."""
    return self.dataset_info_from_configs(
        features=common.video_features(class_names, labelled=labelled),
        description=description,
        homepage=homepage or None,
        citation=citation or None,
        metadata=tfds.core.MetadataDict(),
    )

  def _present_clips(self, split: str, listed: Sequence[tuple[str, Clip | None]], fix: str) -> list[Clip]:
    """The clips of ``listed`` (video_id, clip or None when its file is absent) that are there.

    Absent clips are counted, logged and recorded (``missing_clips`` of the
    metadata: split -> video ids); more than ``max_missing_fraction`` of the
    split, or all of it, fails the build with ``fix`` in the message.
    """
    missing = sorted(video_id for video_id, clip in listed if clip is None)
    self.info.metadata.setdefault('missing_clips', {})[split] = missing
    if missing:
      logging.warning('%s %s: %d of %d annotated clips are not in the download and are left out: %s%s',
                      self.info.full_name, split, len(missing), len(listed), ', '.join(missing[:_MAX_LISTED]),
                      ' ...' if len(missing) > _MAX_LISTED else '')
    if listed and (len(missing) > self._max_missing_fraction * len(listed) or len(missing) == len(listed)):
      limit = 'all of them' if len(missing) == len(listed) else f'more than max_missing_fraction={self._max_missing_fraction}'
      raise MissingClipsError(
          f'{self.info.full_name}: {len(missing)} of {len(listed)} clips of split {split!r} are not in the '
          f'manual folder, {limit} (e.g. {", ".join(missing[:5])}). {fix} Or raise '
          f'config.data.max_missing_fraction to build without them.')
    return [clip for _, clip in listed if clip is not None]

  def _split_generators_for(self, clips: dict[str, Sequence[Clip]]) -> dict[str, Iterator[tuple[str, dict]]]:
    """The value ``_split_generators`` returns: one generator per split that has clips.

    TFDS cannot write a split without examples, so an empty one is left out, with a warning.
    """
    for split in sorted(name for name, c in clips.items() if not c):
      logging.warning('%s: split %r has no clips and is not written.', self.info.full_name, split)
    return {split: self._generate_examples(clips=c, split=split) for split, c in clips.items() if c}

  def _example(self, clip: Clip) -> dict | video_io.VideoReadError:
    """The stored example of ``clip``, or the error that makes it unreadable (run in worker threads)."""
    return decode_clip(clip, self.builder_config.shorter_side, self.info.full_name)

  def _examples_in_order(self, clips: Sequence[Clip]) -> Iterator[tuple[Clip, dict | video_io.VideoReadError]]:
    """``(clip, self._example(clip))`` in order, computed by a few threads ahead of the consumer.

    OpenCV releases the GIL while decoding, resizing and encoding, so threads
    use every core; at most ``2 * workers`` clips are held in memory.
    """
    workers = min(_MAX_WORKERS, os.cpu_count() or 1)
    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix='decode')
    pending = collections.deque()
    remaining = iter(clips)
    try:
      for clip in itertools.islice(remaining, 2 * workers):
        pending.append((clip, pool.submit(self._example, clip)))
      while pending:
        clip, future = pending.popleft()
        result = future.result()
        for next_clip in itertools.islice(remaining, 1):
          pending.append((next_clip, pool.submit(self._example, next_clip)))
        yield clip, result
    finally:
      pool.shutdown(wait=True, cancel_futures=True)

  def _generate_splits(self, dl_manager: tfds.download.DownloadManager,
                       download_config: tfds.download.DownloadConfig):
    """Notes whether this build runs on Beam (TFDS decides by what ``_generate_examples`` returns)."""
    self._use_beam = bool(download_config.beam_runner or download_config.beam_options)
    self._listed_clips: dict[str, int] = {}
    return super()._generate_splits(dl_manager, download_config)

  def _generate_examples(self, clips: Sequence[Clip], split: str):
    """The decodable clips of one split: a generator (local build) or a Beam transform (Beam build)."""
    self._listed_clips[split] = len(clips)
    if getattr(self, '_use_beam', False):
      from scfa_jax.datasets import beam_pipeline  # pylint: disable=g-import-not-at-top  # Beam only when asked.
      return beam_pipeline.DecodeClips(clips=list(clips), shorter_side=self.builder_config.shorter_side,
                                       dataset=self.info.full_name, split=split,
                                       skipped_prefix=self._skipped_prefix(split))
    return self._generate_local(clips, split)

  def _generate_local(self, clips: Sequence[Clip], split: str) -> Iterator[tuple[str, dict]]:
    """Yields the decodable clips of one split, then applies the bad-clip policy."""
    skipped = []
    for clip, result in self._examples_in_order(clips):
      if isinstance(result, video_io.VideoReadError):
        logging.warning('%s %s: skipping clip %s: %s', self.info.full_name, split, clip.video_id, result)
        skipped.append(skipped_record(clip, result))
      else:
        yield clip.video_id, result
    self._apply_bad_clip_policy(split, len(clips), skipped)

  def _skipped_prefix(self, split: str) -> str:
    """Where the Beam workers write a split's skipped clips (in the build's temporary folder)."""
    return os.path.join(os.fspath(self.data_dir), f'.skipped_clips-{split}')

  def _process_pipeline_result(self, pipeline_result) -> None:
    """After a Beam build: gathers the workers' skipped clips and applies the policy per split."""
    from scfa_jax.datasets import beam_pipeline  # pylint: disable=g-import-not-at-top
    for split, listed in sorted(self._listed_clips.items()):
      skipped = beam_pipeline.read_skipped(self._skipped_prefix(split))
      self._apply_bad_clip_policy(split, listed, skipped)

  def _apply_bad_clip_policy(self, split: str, listed: int, skipped: list[dict]) -> None:
    """Records a split's skipped clips in the metadata and the log; fails if there are too many."""
    skipped = sorted(skipped, key=lambda s: s['video_id'])
    self.info.metadata.setdefault('skipped_clips', {})[split] = skipped
    logging.info('%s %s: %d clips listed, %d stored, %d skipped as unreadable%s', self.info.full_name, split,
                 listed, listed - len(skipped), len(skipped),
                 ': ' + ', '.join(s['video_id'] for s in skipped[:_MAX_LISTED]) if skipped else '.')
    if len(skipped) > self._max_bad_fraction * listed or len(skipped) == listed:
      listing = '\n'.join(f'  {s["reason"]}' for s in skipped[:_MAX_LISTED])
      if len(skipped) > _MAX_LISTED:
        listing += f'\n  ... and {len(skipped) - _MAX_LISTED} more (all are named in the log above).'
      limit = 'all of them' if len(skipped) == listed else f'more than max_bad_fraction={self._max_bad_fraction}'
      raise BadClipsError(
          f'{self.info.full_name}: {len(skipped)} of {listed} clips of split {split!r} could not be '
          f'decoded, {limit}:\n{listing}\nRe-download or re-extract these files, or raise '
          f'config.data.max_bad_fraction to build without them.')


def decode_clip(clip: Clip, shorter_side: int, dataset: str) -> dict | video_io.VideoReadError:
  """The stored example of ``clip``, or the error that makes it unreadable: the one decoding path of both builds."""
  try:
    if clip.path.is_dir():
      files = frame_files(clip.path)
      if not files:
        raise video_io.VideoReadError(f'{clip.path}: the frame folder holds no {"/".join(IMAGE_EXTENSIONS)} file.')
      frames = video_io.read_frame_files(files, shorter_side=shorter_side)
    else:
      frames = video_io.read_video(clip.path, shorter_side=shorter_side)
  except video_io.VideoReadError as e:
    return e
  if clip.expected_frames and len(frames) != clip.expected_frames:
    logging.warning('%s: clip %s decodes to %d frames where its annotation says %d; keeping %d.',
                    dataset, clip.path, len(frames), clip.expected_frames, len(frames))
  return common.make_example(frames, label=clip.label, video_id=clip.video_id, shorter_side=shorter_side)


def skipped_record(clip: Clip, error: Exception) -> dict[str, str]:
  """The metadata entry of a skipped clip (the same in both builds)."""
  return {'video_id': clip.video_id, 'path': os.fspath(clip.path), 'reason': str(error)}

