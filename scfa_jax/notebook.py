"""What the Colab notebooks (``colab/*.ipynb``) share: where they run, the accelerator, configs, smoke mode.

``SCFA_NOTEBOOK_SMOKE=1`` swaps every config for a tiny one (the sizes of the
tests' ``make_tiny_config``) so that CI executes the notebooks top to bottom in
a minute or two; ``SCFA_NOTEBOOK_RUNS`` moves the notebooks' runs folder (CI
points it at a temporary directory).
"""

from __future__ import annotations

import importlib.util
import os
import sys

import ml_collections

from scfa_jax import console

SMOKE_ENV = 'SCFA_NOTEBOOK_SMOKE'
RUNS_ENV = 'SCFA_NOTEBOOK_RUNS'
CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')
REAL_DATASETS = {'hmdb51': 'hmdb', 'penn_action': 'penn_action'}  # data.name -> config file in configs/


def on_colab() -> bool:
  """Whether this kernel is a Colab runtime (Drive cells run only there)."""
  return importlib.util.find_spec('google.colab') is not None


def smoke() -> bool:
  """CI's smoke mode: tiny configs everywhere."""
  return os.environ.get(SMOKE_ENV, '0') not in ('', '0')


def runs_root() -> str:
  """Where the notebooks' workdirs (and, in smoke mode, the tiny dataset) live."""
  default = '/content/runs' if on_colab() else os.path.abspath('runs')
  return os.environ.get(RUNS_ENV) or default


def set_up() -> str:
  """Quiet console into the cell output, TensorFlow kept off the accelerators; returns the devices in words."""
  console.configure(stream=sys.stdout, filter_native_stderr=True)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')  # tf.data only: the accelerators belong to JAX
  import jax  # pylint: disable=g-import-not-at-top
  devices = jax.devices()
  kind = devices[0].device_kind if devices[0].platform != 'cpu' else 'CPU'
  return f'{len(devices)} x {kind} ({devices[0].platform}), JAX {jax.__version__}'


def load_config(name: str) -> ml_collections.ConfigDict:
  """``get_config()`` of ``configs/<name>.py`` (or of a path to a config file)."""
  path = name if name.endswith('.py') else os.path.join(CONFIGS_DIR, f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'scfa_config_{os.path.basename(path)[:-3]}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def fit_batch_to_devices(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Rounds the global train and eval batches up to a multiple of the device count (8 cores on a v2-8)."""
  import jax  # pylint: disable=g-import-not-at-top
  n = jax.device_count()
  config.train.batch_size = -(-config.train.batch_size // n) * n
  config.eval.batch_size = -(-config.eval.batch_size // n) * n
  return config


def shrink(config: ml_collections.ConfigDict, data_dir: str) -> ml_collections.ConfigDict:
  """Smoke-mode sizes: synthetic_motion/tiny, ResNet-10 at width 4 on 2x2 grids of 8 px, 2 epochs."""
  config.data.update(name='synthetic_motion', builder_config='tiny', data_dir=data_dir, manual_dir='', grid_rows=2,
                     grid_cols=2, tile_size=8, shuffle_buffer=64, preprocessing='imagenet')
  config.model.update(depth=10, width=4, proj_hidden_dim=16, proj_dim=8, init_from='', dtype='float32',
                      classifier_hidden_dim=0)
  config.optim.update(learning_rate=3e-3, warmup_epochs=0.5)
  config.train.update(batch_size=8, num_epochs=2, log_every_steps=2, max_steps=-1)
  config.ckpt.update(every_steps=4, max_to_keep=2)
  config.eval.update(batch_size=8, knn_k=3, num_test_clips=2, finetune_epochs=0)
  return config


def demo_config() -> ml_collections.ConfigDict:
  """``configs/demo.py`` with batches fitted to the devices (tiny in smoke mode)."""
  config = load_config('demo')
  if smoke():
    shrink(config, os.path.join(runs_root(), 'tensorflow_datasets'))
  return fit_batch_to_devices(config)


def real_config(dataset: str, drive_root: str, *, weights: str) -> ml_collections.ConfigDict:
  """The paper's recipe for ``dataset`` (hmdb51 | penn_action) with everything on Drive under ``drive_root``.

  The downloaded files go in ``<drive_root>/downloads/<dataset>``; the built
  dataset is kept in ``<drive_root>/tensorflow_datasets`` (built once); the
  ported backbone is ``weights``. bfloat16 activations on TPUs and GPUs.
  """
  if dataset not in REAL_DATASETS:
    raise ValueError(f'dataset must be one of {sorted(REAL_DATASETS)}, got {dataset!r}.')
  import jax  # pylint: disable=g-import-not-at-top
  config = load_config(REAL_DATASETS[dataset])
  config.data.manual_dir = os.path.join(drive_root, 'downloads', dataset)
  config.data.data_dir = os.path.join(drive_root, 'tensorflow_datasets')
  config.model.init_from = weights
  config.model.variant = 'v1'  # the Keras ResNet-50 the authors used (see docs/weights.md)
  if jax.devices()[0].platform != 'cpu':
    config.model.dtype = 'bfloat16'
  return fit_batch_to_devices(config)


def example_clip(path: str, class_name: str = 'move_up', *, frame_size: int = 96, num_frames: int = 48) -> str:
  """Writes one synthetic_motion clip of ``class_name`` as an MP4 at ``path``: a clip to classify off Colab."""
  import cv2  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from scfa_jax.datasets.synthetic_motion import synthetic_motion  # pylint: disable=g-import-not-at-top
  label = synthetic_motion.SyntheticMotion.CLASS_NAMES.index(class_name)
  frames = synthetic_motion.render_clip(np.random.default_rng(label), label, frame_size=frame_size,
                                        num_frames=num_frames)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 25, (frame_size, frame_size))
  for frame in frames:
    writer.write(frame[..., ::-1])
  writer.release()
  return path
