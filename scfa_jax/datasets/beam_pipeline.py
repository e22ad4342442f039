"""The Beam side of a clip build: decode a split's clips on Beam's workers, skipped clips as a side output.

``ClipBuilder._generate_examples`` returns ``DecodeClips`` when the build runs on
Beam; TFDS applies it to its pipeline and writes the ``(key, example)`` pairs it
yields, exactly as it writes the local generator's. Each worker decodes with
``clip_builder.decode_clip`` (the local build's function, so the examples are the
same bytes). A clip that cannot be decoded goes to a second output, written as
JSON lines next to the dataset being built, and counts in the Beam counter
``scfa_jax/<split>_skipped_clips``; ``read_skipped`` gathers those lines once the
pipeline is done so that ``max_bad_fraction`` judges the whole split, whatever
the number of workers.
"""

from __future__ import annotations

import json
from typing import Iterator, Sequence

import tensorflow as tf
import tensorflow_datasets as tfds

from scfa_jax.datasets import clip_builder

beam = tfds.core.lazy_imports.apache_beam
_SKIPPED = 'skipped'


class _DecodeFn(beam.DoFn):
  """Decodes one clip: its example on the main output, or its skip record on ``skipped``."""

  def __init__(self, shorter_side: int, dataset: str, split: str):
    super().__init__()
    self._shorter_side = shorter_side
    self._dataset = dataset
    self._skipped = beam.metrics.Metrics.counter('scfa_jax', f'{split}_skipped_clips')
    self._stored = beam.metrics.Metrics.counter('scfa_jax', f'{split}_stored_clips')

  def process(self, clip: clip_builder.Clip) -> Iterator:
    result = clip_builder.decode_clip(clip, self._shorter_side, self._dataset)
    if isinstance(result, Exception):
      self._skipped.inc()
      yield beam.pvalue.TaggedOutput(_SKIPPED, json.dumps(clip_builder.skipped_record(clip, result)))
    else:
      self._stored.inc()
      yield clip.video_id, result


class DecodeClips(beam.PTransform):
  """``pipeline | DecodeClips(...)``: the ``(video_id, example)`` pairs of the decodable clips of one split."""

  def __init__(self, *, clips: Sequence[clip_builder.Clip], shorter_side: int, dataset: str, split: str,
               skipped_prefix: str):
    super().__init__()
    self._clips = clips
    self._shorter_side = shorter_side
    self._dataset = dataset
    self._split = split
    self._skipped_prefix = skipped_prefix

  def expand(self, pipeline):
    outputs = (pipeline
               | 'ListClips' >> beam.Create(self._clips)
               | 'Spread' >> beam.Reshuffle()  # One worker lists, every worker decodes.
               | 'Decode' >> beam.ParDo(_DecodeFn(self._shorter_side, self._dataset, self._split)).with_outputs(
                   _SKIPPED, main='examples'))
    _ = outputs[_SKIPPED] | 'WriteSkipped' >> beam.io.WriteToText(self._skipped_prefix, file_name_suffix='.jsonl')
    return outputs['examples']


def read_skipped(prefix: str) -> list[dict]:
  """The skip records the workers wrote under ``prefix``; the files are removed once read."""
  records = []
  for path in sorted(tf.io.gfile.glob(prefix + '*')):
    with tf.io.gfile.GFile(path) as f:
      records.extend(json.loads(line) for line in f if line.strip())
    tf.io.gfile.remove(path)
  return records
