"""Prepares synthetic_motion/tiny in argv[1] through datasets.get_builder; prints JSON saying whether it built.

Run twice at once by tests/test_dataset_lock.py. The build is slowed down so
that, without the lock, both processes would be inside it together.
"""

import json
import sys
import time

import tensorflow_datasets as tfds

from scfa_jax import datasets
from scfa_jax import config as base_config

built = []
_prepare = tfds.core.DatasetBuilder.download_and_prepare


def slow_prepare(self, *args, **kwargs):
  built.append(time.time())
  time.sleep(3.0)
  return _prepare(self, *args, **kwargs)


def main():
  tfds.core.DatasetBuilder.download_and_prepare = slow_prepare
  data = base_config.get_config().data
  data.update(name='synthetic_motion', builder_config='tiny', data_dir=sys.argv[1])
  builder = datasets.get_builder(data)
  print(json.dumps({'built': len(built), 'train': builder.info.splits['train'].num_examples,
                    'test': builder.info.splits['test'].num_examples}))


if __name__ == '__main__':
  main()
