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
