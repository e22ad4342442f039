"""``python -m scfa_jax.main`` with two hooks for tests/test_multihost.py.

* ``MH_WRITES_LOG=path``: records every file this process opens for writing
  under ``--workdir`` (outside ``checkpoints/``, which orbax coordinates), as
  JSON at exit. Process 1 of a multi-host run must write none of them.
* ``MH_REFERENCE=1``: one process plays both hosts of a two-host run: each
  global batch is host 0's batch followed by host 1's, as the devices of a
  two-host run hold them, so its training must match that run exactly.

The flags are main's own (``--coordinator_address`` etc.), so the run goes
through the real entry point.
"""

import atexit
import json
import os
import sys

from absl import app

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def record_writes(log_path: str, workdir: str) -> None:
  workdir = os.path.abspath(workdir)
  skip = os.path.join(workdir, 'checkpoints')
  written: list[str] = []

  def hook(event, args):
    if event != 'open' or not isinstance(args[0], (str, bytes, os.PathLike)):
      return
    path, mode, flags = args
    writing = any(c in mode for c in 'wax+') if isinstance(mode, str) else bool((flags or 0) & WRITE_FLAGS)
    path = os.path.abspath(os.fsdecode(path))
    if writing and path.startswith(workdir + os.sep) and not path.startswith(skip + os.sep):
      written.append(os.path.relpath(path, workdir))

  sys.addaudithook(hook)

  @atexit.register
  def dump():
    with open(log_path, 'w') as f:
      json.dump(sorted(set(written)), f)


def play_both_hosts() -> None:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from scfa_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  original = input_pipeline.create_train_dataset

  def both_hosts(builder, data_config, *, local_batch_size, **kwargs):
    parts = [original(builder, data_config, local_batch_size=local_batch_size // 2, process_index=i,
                      num_processes=2, **kwargs) for i in range(2)]
    return tf.data.Dataset.zip(tuple(parts)).map(lambda a, b: tf.nest.map_structure(
        lambda x, y: tf.concat([x, y], axis=0), a, b))

  input_pipeline.create_train_dataset = both_hosts


def main():
  workdir = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--workdir='))
  if os.environ.get('MH_WRITES_LOG'):
    record_writes(os.environ['MH_WRITES_LOG'], workdir)
  if os.environ.get('MH_REFERENCE'):
    play_both_hosts()
  from scfa_jax import main as scfa_main  # pylint: disable=g-import-not-at-top
  app.run(scfa_main.main, flags_parser=scfa_main.parse_flags)


if __name__ == '__main__':
  main()
