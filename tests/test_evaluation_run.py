"""Every protocol on one tiny trained workdir: results.json, figures, fine-tuning, --mode=eval."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image

from scfa_jax.evaluation import evaluate
from scfa_jax.evaluation import finetune
from scfa_jax.evaluation import schema
from scfa_jax.training import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def trained(evaluated_workdir):
  """(config, workdir, results) of one tiny run: 6 SupCon steps, then 3 fine-tuning steps, 2 test views (conftest)."""
  return evaluated_workdir


def _checkpoint_steps(directory: str) -> list[int]:
  return sorted(ocp.utils.checkpoint_steps(directory))


@pytest.mark.slow
def test_results_file_validates_and_agrees_with_itself(trained):
  _, workdir, results = trained
  with open(os.path.join(workdir, evaluate.RESULTS_FILE)) as f:
    written = json.load(f)
  assert written == results
  schema.validate(written)
  assert written['num_test'] == 12 and written['num_train'] == 24 and written['num_test_clips'] == 2
  assert set(written['protocols']) == {'linear_probe', 'knn', 'finetune', 'retrieval'}
  assert written['settings']['finetune_steps'] == 3  # 1 epoch of 24 videos at batch 8
  for name in ('linear_probe', 'knn', 'finetune'):
    entry = written['protocols'][name]
    assert written[f'{name}_top1'] == entry['single_view']['top1']
    for view in ('single_view', 'averaged'):
      counts = np.asarray(entry[view]['confusion_matrix'])
      assert counts.sum() == 12 and np.trace(counts) / 12 == pytest.approx(entry[view]['top1'])
      per_class = [entry[view]['per_class_top1'][n] for n in written['class_names']]
      np.testing.assert_allclose(per_class, np.diag(counts) / counts.sum(1))
  for view in ('single_view', 'averaged'):
    found = written['protocols']['retrieval'][view]
    assert found['num_queries'] == 12 and found['recall@1'] <= found['recall@5'] <= found['recall@10']


def test_figures_are_valid_pngs(trained):
  _, workdir, results = trained
  assert set(results['figures']) == {'confusion_matrix', 'embedding_map', 'training_curves', 'retrieval_examples'}
  for name in results['figures'].values():
    with Image.open(os.path.join(workdir, name)) as image:
      image.verify()  # raises on a truncated or corrupt file
    with Image.open(os.path.join(workdir, name)) as image:
      assert image.format == 'PNG' and min(image.size) >= 200


def test_finetuning_trains_the_encoder_in_its_own_folder(trained):
  config, workdir, _ = trained
  assert _checkpoint_steps(os.path.join(workdir, 'checkpoints')) == [4, 6]  # pre-training's, untouched
  tuned_dir = os.path.join(finetune.run_dir(workdir, 6, config), 'checkpoints')
  assert _checkpoint_steps(tuned_dir) == [2, 3]
  restore = lambda directory, step: ocp.CheckpointManager(directory).restore(step, args=ocp.args.StandardRestore())
  pretrained = restore(os.path.join(workdir, 'checkpoints'), 6)['params']
  tuned = restore(tuned_dir, 3)['params']
  assert 'classifier' in tuned and 'classifier' not in pretrained
  changed = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(pretrained['encoder']),
                                                   jax.tree.leaves(tuned['encoder']))]
  assert any(changed)  # the whole network is fine-tuned, not just the head


@pytest.mark.slow
def test_eval_mode_reproduces_the_results_and_reuses_the_finetune(trained):
  config, workdir, results = trained
  tuned_dir = os.path.join(finetune.run_dir(workdir, 6, config), 'checkpoints')
  again = train.evaluate_workdir(config, workdir)
  assert again == results  # same checkpoints, deterministic views: the same numbers
  assert _checkpoint_steps(tuned_dir) == [2, 3]  # nothing was trained again


@pytest.mark.slow
def test_eval_mode_without_a_checkpoint_names_the_workdir(tmp_path):
  workdir = tmp_path / 'never_trained'
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), JAX_PLATFORMS='cpu')
  proc = subprocess.run([sys.executable, '-m', 'scfa_jax.main', '--config=configs/demo.py', f'--workdir={workdir}',
                         '--mode=eval'], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert f'No checkpoint in {workdir}' in proc.stderr and 'Traceback' not in proc.stderr
  assert not workdir.exists()


@pytest.mark.slow
def test_a_finetune_with_other_settings_trains_in_its_own_folder(trained):
  """Last in this module: it rewrites results.json, which must then describe the new fine-tune."""
  config, workdir, _ = trained
  first = finetune.run_dir(workdir, 6, config)
  other = config.copy_and_resolve_references()
  other.eval.update(finetune_learning_rate=3e-3, plots=False)
  second = finetune.run_dir(workdir, 6, other)
  assert second != first and not os.path.exists(second)
  results = train.evaluate_workdir(other, workdir)
  assert _checkpoint_steps(os.path.join(second, 'checkpoints')) == [2, 3]  # trained, not reused
  assert _checkpoint_steps(os.path.join(first, 'checkpoints')) == [2, 3]  # the first one untouched
  with open(os.path.join(second, finetune.SETTINGS_FILE)) as f:
    assert json.load(f)['eval.finetune_learning_rate'] == 3e-3
  assert results['settings']['finetune_learning_rate'] == 3e-3
  with open(os.path.join(workdir, evaluate.RESULTS_FILE)) as f:
    assert json.load(f) == results
