"""Forward compute from XLA's cost analysis, and the method comparison (tools/compare.py) built on results.json."""

import csv
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from scfa_jax import config as base_config
from scfa_jax.evaluation import compute
from scfa_jax.evaluation import evaluate
from scfa_jax.evaluation import schema
from scfa_jax.models import scfa
from scfa_jax.tools import compare


class _Dense(nn.Module):

  @nn.compact
  def __call__(self, x, train=False):
    return nn.Dense(5)(x.reshape((x.shape[0], -1)))


def _flops(model, image_shape):
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1,) + image_shape), train=False))
  return compute.forward_flops(model.apply, variables, image_shape)


def test_flops_of_a_dense_layer_are_two_per_multiply_add():
  flops = _flops(_Dense(), (2, 3, 1))  # 6 inputs -> 5 outputs: 30 multiply-adds, plus 5 bias adds
  assert 60 <= flops <= 60 + 5


def test_flops_of_resnet50_at_224_are_the_published_4_1_giga_multiply_adds():
  model = scfa.create_model(base_config.get_config().model)
  gflops = _flops(model, (224, 224, 3)) / 1e9
  # torchvision's 4.09 GMACs count every kernel tap; XLA skips taps on padding (measured 3.98 GMACs = 7.95 GFLOPs).
  # Counting a multiply-add once, or the wrong image size, would land far outside.
  assert 2 * 3.9 < gflops < 2 * 4.2, gflops


def _write_run(workdir, method_accuracy, seed, gflops):
  os.makedirs(workdir)
  config = base_config.get_config()
  config.eval.update(knn_k=3, num_test_clips=1)
  config.data.update(train_split='train', test_split='test')
  labels = np.arange(10) % 2
  hits = int(round(method_accuracy * 10))
  predicted = np.where(np.arange(10) < hits, labels, 1 - labels)
  metrics = evaluate.classification_metrics(labels, predicted, ['a', 'b'])
  protocols = {'linear_probe': {'single_view': metrics, 'averaged': None},
               'knn': {'single_view': metrics, 'averaged': None}}
  results = evaluate.assemble_results(protocols, dataset='toy/1.0.0', config=config, step=5, class_names=['a', 'b'],
                                      num_train=20, test_labels=labels, finetune_steps=0)
  results['compute'] = compute.compute_entry(gflops * 1e9, images_per_video_single=1, images_per_video_averaged=1,
                                             image_shape=(96, 96, 3))
  schema.validate(results)
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(results, f)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    json.dump({'seed': seed}, f)


def test_compare_reports_mean_and_range_over_seeds(tmp_path):
  workdirs = []
  for method, accuracies, gflops in (('grid', (0.9, 0.7, 0.8), 0.5), ('single_frame', (0.2,), 0.5 / 16)):
    for seed, accuracy in enumerate(accuracies):
      workdir = str(tmp_path / 'runs' / method / f'seed{seed}')
      _write_run(workdir, accuracy, seed, gflops)
      workdirs.append(workdir)
  workdirs.append(str(tmp_path / 'runs' / 'never_finished'))  # left out, with a message
  markdown = compare.compare(workdirs, str(tmp_path / 'out'))
  lines = markdown.splitlines()
  assert lines[0] == '| method | seeds | linear probe | kNN | GFLOPs / video | images / video |'
  assert lines[2] == '| grid | 0, 1, 2 | 80.0% (70.0-90.0) | 80.0% (70.0-90.0) | 0.5 | 1 |'
  assert lines[3] == '| single_frame | 0 | 20.0% | 20.0% | 0.0312 | 1 |'
  with open(tmp_path / 'out' / 'compare.csv') as f:
    rows = list(csv.DictReader(f))
  assert [(r['method'], r['seed'], r['linear probe']) for r in rows][:2] == [('grid', '0', '0.900000'),
                                                                            ('grid', '1', '0.700000')]
  with Image.open(tmp_path / 'out' / 'accuracy_vs_compute.png') as image:
    image.verify()


@pytest.mark.parametrize('workdir,method,seed', [
    ('r/demo_ce/seed3', 'demo_ce', 3),
    ('scfa_demo_seed12', 'scfa_demo', 12),
    ('scfa_demo', 'scfa_demo', None),
])
def test_method_and_seed_come_from_the_workdir_name(tmp_path, workdir, method, seed):
  workdir = str(tmp_path / workdir)  # folders without a config.json: only the name can tell
  assert compare.method_of(workdir) == method
  assert compare.seed_of(workdir) == seed


def test_the_seed_in_config_json_wins_over_the_name(tmp_path):
  workdir = tmp_path / 'demo_seed12'
  workdir.mkdir()
  (workdir / 'config.json').write_text(json.dumps({'seed': 3}))
  assert compare.seed_of(str(workdir)) == 3
