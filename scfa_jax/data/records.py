"""A split's stored records with their frames left encoded.

Every pass that reads a dataset (the train and test pipelines, the labels of a
split, the video ids of a split) starts from the same read: files in stored
order, so that seeded shuffling and the order of evaluation's embeddings do
not depend on TFDS; the frames still JPEG/PNG-encoded, so that a pass that
needs only the labels or ids never decodes a frame and the pipelines decode
only the frames a view samples; no TFDS auto-caching, whose decision depends
on the split's size (the pipelines cache explicitly where it pays).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tensorflow_datasets as tfds

if TYPE_CHECKING:
  import tensorflow as tf


def read_undecoded(builder: tfds.core.DatasetBuilder, split: str, frames_key: str) -> tf.data.Dataset:
  """``split``'s examples in stored order, ``frames_key`` still encoded (the other features decoded)."""
  return builder.as_dataset(split=split, shuffle_files=False, decoders={frames_key: tfds.decode.SkipDecoding()},
                            read_config=tfds.ReadConfig(try_autocache=False))
