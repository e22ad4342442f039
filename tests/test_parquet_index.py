"""Parquet embedding files survive a killed run: committed parts are read, merged on close, never lost or doubled."""

import os
import shutil

import numpy as np
import pytest

from scfa_jax.inference import parquet_index

IDENTITY = {'format': 1, 'workdir': '/runs/a', 'step': 7, 'config': 'f00d', 'dim': 3, 'views': 1}


def _row(name: str, value: float):
  return (name, '', np.full(3, value, np.float32))


@pytest.mark.parametrize('single', [True, False])
def test_a_killed_run_keeps_what_it_committed_and_the_next_run_merges_it(tmp_path, single):
  out = str(tmp_path / ('index.parquet' if single else 'index/'))
  killed = parquet_index.Writer(out, 3, IDENTITY, commit_every_s=0.0)  # commits after every write
  killed.write(*_row('a.mp4', 1.0))
  killed.write(*_row('b.mp4', 2.0))
  # The process dies here: close() never runs. What it embedded is on disk, complete.
  assert parquet_index.finished(out) == {'a.mp4', 'b.mp4'}

  resumed = parquet_index.Writer(out, 3, IDENTITY, commit_every_s=1e9)
  resumed.write(*_row('c.mp4', 3.0))
  assert parquet_index.finished(out) == {'a.mp4', 'b.mp4'}  # not committed yet
  resumed.close()
  index = parquet_index.load(out)
  assert dict(zip(index.names, index.features[:, 0])) == {'a.mp4': 1.0, 'b.mp4': 2.0, 'c.mp4': 3.0}
  assert len(index.names) == 3
  assert parquet_index.identity_of(out) == IDENTITY
  if single:  # one file again, its parts folder gone
    assert parquet_index.files(out) == [out] and not os.path.exists(parquet_index.sidecar(out))
  else:  # the killed run's parts stay (complete files); the closed run merged its own into one
    assert len(parquet_index.files(out)) == 3


def test_rows_left_twice_by_a_cut_off_merge_are_read_once(tmp_path):
  out = str(tmp_path / 'index.parquet')
  writer = parquet_index.Writer(out, 3, IDENTITY, commit_every_s=0.0)
  writer.write(*_row('a.mp4', 1.0))
  writer.write(*_row('b.mp4', 2.0))
  part = parquet_index.files(out)[0]
  kept = str(tmp_path / 'part.parquet')
  shutil.copy(part, kept)
  writer.close()
  os.makedirs(parquet_index.sidecar(out))  # killed after the file was rewritten, before its parts were removed
  shutil.copy(kept, os.path.join(parquet_index.sidecar(out), os.path.basename(part)))
  assert parquet_index.load(out).names == ['a.mp4', 'b.mp4']
  parquet_index.Writer(out, 3, IDENTITY).close()  # the next run's merge drops the copy
  assert parquet_index.load(out).names == ['a.mp4', 'b.mp4'] and parquet_index.files(out) == [out]


def test_an_index_in_object_storage_reads_as_the_local_one(tmp_path):
  """A folder index copied to object storage (TensorFlow's ram:// file system standing in for gs://) loads the same."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  local = str(tmp_path / 'index/')
  writer = parquet_index.Writer(local, 3, IDENTITY, commit_every_s=0.0)
  for i, name in enumerate(['a.mp4', 'b.mp4', 'c.mp4']):
    writer.write(*_row(name, float(i)))  # three committed part files
  remote = f'ram://bucket-{os.getpid()}/index'
  tf.io.gfile.makedirs(remote)
  for part in parquet_index.files(local):
    tf.io.gfile.copy(part, f'{remote}/{os.path.basename(part)}')
  tf.io.gfile.makedirs(f'{remote}/.in_progress')  # a hidden sub-folder: not a part
  assert parquet_index.is_parquet(remote) and len(parquet_index.files(remote)) == 3
  index, expected = parquet_index.load(remote), parquet_index.load(local)
  assert index.names == expected.names and parquet_index.identity_of(remote) == IDENTITY
  np.testing.assert_array_equal(index.features, expected.features)
  assert parquet_index.files(f'{remote}-missing') == [] and not parquet_index.is_parquet(f'{remote}-missing.csv')
