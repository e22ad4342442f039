"""Damaged checkpoints: the run falls back to the newest intact one, or says exactly what to remove."""

import glob
import logging
import os
import shutil

import ml_collections
import numpy as np
import pytest

from scfa_jax.training import checkpointing

CKPT = ml_collections.ConfigDict({'every_steps': 2, 'max_to_keep': 5})


def _state(step: int, width: int = 3) -> dict:
  return {'params': {'w': np.full((2, width), float(step), np.float32), 'b': np.arange(width, dtype=np.float32)},
          'step': np.asarray(step, np.int32)}


def _files(folder: str) -> list[str]:
  return sorted(p for p in glob.glob(os.path.join(folder, '**'), recursive=True) if os.path.isfile(p))


def _truncate_all(folder):
  for path in _files(folder):
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) // 2)


def _empty_all(folder):
  for path in _files(folder):
    open(path, 'w').close()


def _remove_tree_metadata(folder):
  os.remove(os.path.join(folder, 'default', '_METADATA'))


def _empty_folder(folder):
  shutil.rmtree(folder)
  os.makedirs(folder)


@pytest.fixture
def workdir(tmp_path) -> str:
  """A workdir with real orbax checkpoints at steps 2, 4 and 6."""
  manager = checkpointing.create_manager(str(tmp_path), CKPT)
  for step in (2, 4, 6):
    checkpointing.save(manager, step, _state(step))
  manager.close()
  return str(tmp_path)


def _restore(workdir: str, width: int = 3) -> dict:
  manager = checkpointing.create_manager(workdir, CKPT)
  try:
    return checkpointing.restore_latest(manager, _state(0, width))
  finally:
    manager.close()


def test_intact_checkpoints_restore_the_latest(workdir):
  assert int(_restore(workdir)['step']) == 6


@pytest.mark.parametrize('damage', [_truncate_all, _empty_all, _remove_tree_metadata, _empty_folder])
def test_damaged_latest_falls_back_to_the_newest_intact_one(workdir, damage, caplog):
  damage(os.path.join(workdir, 'checkpoints', '6'))
  with caplog.at_level(logging.WARNING):
    restored = _restore(workdir)
  assert int(restored['step']) == 4
  np.testing.assert_array_equal(restored['params']['w'], _state(4)['params']['w'])
  assert os.path.join(workdir, 'checkpoints', '6') in caplog.text  # the warning names the broken folder
  # Moved aside, so the resumed run can write step 6 again; a second resume is silent.
  assert not os.path.exists(os.path.join(workdir, 'checkpoints', '6'))
  assert os.path.isdir(os.path.join(workdir, 'checkpoints_broken', '6'))
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    assert int(_restore(workdir)['step']) == 4
  assert 'is damaged' not in caplog.text


def test_half_written_save_is_ignored_and_moved_aside(workdir, caplog):
  tmp = os.path.join(workdir, 'checkpoints', '8.orbax-checkpoint-tmp-1234567')
  shutil.copytree(os.path.join(workdir, 'checkpoints', '6'), tmp)
  with caplog.at_level(logging.WARNING):
    assert int(_restore(workdir)['step']) == 6
  assert tmp in caplog.text
  assert not os.path.exists(tmp)


def test_all_damaged_names_every_folder_and_says_removing_restarts(workdir):
  for step in (2, 4, 6):
    (_truncate_all if step != 4 else _remove_tree_metadata)(os.path.join(workdir, 'checkpoints', str(step)))
  with pytest.raises(checkpointing.BrokenCheckpointsError) as error:
    _restore(workdir)
  message = str(error.value)
  assert '\n' not in message
  for step in (2, 4, 6):
    assert os.path.join(workdir, 'checkpoints', str(step)) in message
  assert 'restarts training from scratch' in message and '--workdir' in message
  assert 'new --workdir' not in message
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4', '6']  # nothing moved


def test_a_different_model_is_a_distinct_error(workdir):
  with pytest.raises(checkpointing.CheckpointMismatchError) as error:
    _restore(workdir, width=5)  # orbax alone would restore (2, 3) arrays into (2, 5) without a word
  message = str(error.value)
  assert 'different model configuration' in message and 'params/w' in message and '(2, 3)' in message
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', '6'))  # an intact checkpoint is never moved


def test_non_finite_checkpoint_counts_as_damaged(workdir):
  manager = checkpointing.create_manager(workdir, CKPT)
  bad = _state(8)
  bad['params']['w'][0, 0] = np.nan
  checkpointing.save(manager, 8, bad)
  manager.close()
  assert int(_restore(workdir)['step']) == 6
