"""What a run's start costs: no AutoGraph rewrite of the pipelines' functions, no Keras, no matplotlib until a figure.

Each is checked in a fresh process, because AutoGraph keeps what it rewrote and Keras and matplotlib stay imported
for the rest of a test worker's life.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

START = """
import json, sys
import numpy as np
import scfa_jax  # then TensorFlow's first import, wherever it happens, skips Keras
from tensorflow.python.autograph.impl import api
converted = []
_convert = api._convert_actual
def counting(entity, program_ctx):
  converted.append(f'{getattr(entity, "__module__", "?")}.{getattr(entity, "__qualname__", entity)}')
  return _convert(entity, program_ctx)
api._convert_actual = counting

import tensorflow_datasets as tfds
from tests.conftest import make_tiny_config
from scfa_jax.data import input_pipeline
from scfa_jax.data import pretext
from scfa_jax.evaluation import heads
from scfa_jax.inference import views
from scfa_jax.training import train as unused_train  # as scfa_jax.main does: matplotlib waits for a figure
from scfa_jax.training import writer

data_dir, logdir = sys.argv[1], sys.argv[2]
builder = tfds.builder('synthetic_motion/tiny', data_dir=data_dir)
for data_settings in json.loads(sys.argv[3]):
  config = make_tiny_config(data_dir)
  config.data.update(data_settings)
  config.loss.pretext.update(arrow_of_time=1.0, speed=1.0, shuffle=1.0)
  pretext_spec = pretext.Spec.from_config(config.loss)
  train = input_pipeline.create_train_dataset(builder, config.data, local_batch_size=8, seed=0, start_step=3,
                                              keep=np.arange(0, 24, 2), pretext_spec=pretext_spec)
  next(iter(train))
  test, _ = input_pipeline.create_eval_dataset(builder, 'test', config.data, local_batch_size=8, num_clips=2)
  next(iter(test))
  heads.split_clip_ids(builder, 'test')
  if not config.data.fuse_local_views:  # inference's frames -> grids, on decoded frames
    view_spec = views.ViewSpec(num_clips=2, num_local_views=config.data.num_local_views)
    views.grid_fn(config.data, view_spec)(np.zeros([20, 32, 32, 3], np.uint8))
    views.used_frames_fn(config.data, view_spec)(20)

metrics = writer.create_writer(logdir)
metrics.write_hparams({'learning_rate': 0.5})
metrics.write_scalars(1, {'train_loss': 2.0})
metrics.close()
heavy = sorted(m for m in ('keras', 'sklearn', 'matplotlib') if m in sys.modules)

# Then Keras, which TensorFlow's own import skipped, and TensorBoard's Keras callback still import when asked for.
from tensorboard.plugins.hparams import _keras
import tensorflow as tf
import keras.src.optimizers
print(json.dumps({'converted': sorted(c for c in converted if c.startswith('scfa_jax')), 'heavy': heavy,
                  'keras_callback': issubclass(_keras.Callback, tf.keras.callbacks.Callback)}))
"""


def _last_line_of_a_fresh_process(script: str, *args: str) -> str:
  """Runs ``script`` in a new Python process (nothing imported yet) and returns its last line of output."""
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), JAX_PLATFORMS='cpu')
  done = subprocess.run([sys.executable, '-c', script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope='module')
def fresh_start(tiny_data_dir, tmp_path_factory) -> tuple[dict, str]:
  """START's report from one fresh process, and its TensorBoard log folder.

  One process builds every pipeline variant: any function rewritten anywhere shows in 'converted'.
  """
  data_settings = [
      {},  # the demo's pipeline
      # Every other function a train or test pipeline maps: local views, class-balanced batches, fused samples
      # (and the pretext view, the labelled subset and a resumed start, in every case).
      {'num_local_views': 1, 'balanced_batches_per_class': 2},
      {'num_local_views': 1, 'fuse_local_views': True},
  ]
  logdir = str(tmp_path_factory.mktemp('startup') / 'logs')
  return json.loads(_last_line_of_a_fresh_process(START, tiny_data_dir, logdir, json.dumps(data_settings))), logdir


@pytest.mark.slow(seconds=16)
def test_pipelines_are_traced_as_written_and_training_imports_no_keras(fresh_start):
  out, logdir = fresh_start
  assert (out['converted'], out['heavy']) == ([], [])

  # The writer still records what TensorBoard shows: the scalar and the hparams (through the real hparams API).
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  events = event_accumulator.EventAccumulator(logdir, size_guidance={'tensors': 0})
  events.Reload()
  assert [e.step for e in events.Tensors('train_loss')] == [1]
  assert any(tag.startswith('_hparams_') for tag in events.summary_metadata)


def test_keras_and_tensorboards_keras_callback_still_import_when_asked_for(fresh_start):
  # In START's fresh process: in a test worker CLU may be imported already, and then no stand-in is ever made.
  assert fresh_start[0]['keras_callback'] is True
