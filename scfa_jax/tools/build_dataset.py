r"""Builds (prepares) a dataset from the files you downloaded, and prints its summary.

  python -m scfa_jax.tools.build_dataset --dataset=hmdb51 --config=split1 \
      --manual_dir=~/downloads/hmdb51 --data_dir=~/tensorflow_datasets

Add ``--beam_pipeline_options="runner=DirectRunner,direct_num_workers=2"`` to
build on Apache Beam (the ``beam`` extra; Dataflow, Flink and Spark options in
docs/scale.md).

The same as what ``python -m scfa_jax.main`` does on first use when
``--config.data.manual_dir`` is set (both go through
``scfa_jax.datasets.get_builder``), without starting a training run. An
interrupted build can simply be run again.
"""

from __future__ import annotations

import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import tensorflow_datasets as tfds

from scfa_jax import config as base_config
from scfa_jax import datasets
from scfa_jax import errors

_DATASET = flags.DEFINE_string('dataset', None, f'One of {sorted(datasets.BUILDERS)}.', required=True)
_CONFIG = flags.DEFINE_string('config', '', "Builder config, e.g. 'split2' ('' = the builder's default).")
_MANUAL_DIR = flags.DEFINE_string('manual_dir', '', 'Folder with the downloaded (or extracted) files.')
_DATA_DIR = flags.DEFINE_string('data_dir', '', "Where TFDS stores prepared datasets ('' = ~/tensorflow_datasets).")
_SHORTER_SIDE = flags.DEFINE_integer('shorter_side', 0, "Side of the stored square frames in px (0 = builder default, 56: the paper's tile).")
_MAX_BAD_FRACTION = flags.DEFINE_float('max_bad_fraction', 0.01,
                                       'Fail if more than this fraction of a split cannot be decoded.')
_MAX_MISSING_FRACTION = flags.DEFINE_float('max_missing_fraction', None,
                                           'Fail if more than this fraction of a split is absent from the download '
                                           '(default: the builder\'s; Kinetics 0.3, others 0).')
_BEAM_OPTIONS = flags.DEFINE_string('beam_pipeline_options', '',
                                    'Build on Apache Beam with these comma-separated pipeline options, e.g. '
                                    '"runner=DirectRunner,direct_num_workers=2" (\'\' = build in this process).')


def summarize(builder: tfds.core.DatasetBuilder) -> str:
  """Human-readable summary of a prepared dataset: where, splits, size, skipped clips."""
  info = builder.info
  classes = info.features['label'].num_classes if 'label' in info.features else 'n/a'
  lines = [f'{info.full_name} in {builder.data_dir}', f'  classes: {classes}, size on disk: {info.dataset_size}']
  skipped = (info.metadata or {}).get('skipped_clips', {})
  missing = (info.metadata or {}).get('missing_clips', {})
  for name, split in sorted(info.splits.items()):
    bad = skipped.get(name, [])
    absent = f', {len(missing[name])} absent from the download' if missing.get(name) else ''
    lines.append(f'  {name}: {split.num_examples} clips stored, {len(bad)} skipped as unreadable{absent}')
    lines.extend(f'    skipped {s["path"]}: {s["reason"]}' for s in bad)
  return '\n'.join(lines)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  data = base_config.get_config().data
  data.name = _DATASET.value
  data.builder_config = _CONFIG.value
  data.manual_dir = _MANUAL_DIR.value
  data.data_dir = _DATA_DIR.value
  data.shorter_side = _SHORTER_SIDE.value
  data.max_bad_fraction = _MAX_BAD_FRACTION.value
  data.max_missing_fraction = _MAX_MISSING_FRACTION.value
  try:
    builder = datasets.get_builder(data, beam_pipeline_options=_BEAM_OPTIONS.value)
  except errors.UserError as e:  # a missing or unreadable download: one message, no traceback
    print(f'{sys.argv[0]}: error: {e}', file=sys.stderr)
    sys.exit(e.exit_code)
  logging.info('Prepared %s', builder.info.full_name)
  print(summarize(builder))


if __name__ == '__main__':
  app.run(main)
