r"""``python -m scfa_jax.bench predict``: videos/s of ``Predictor.embed``, and where the time goes.

For the demo model and for ResNet-50 at 224 px (4x4 grid of 56 px tiles), on
the same generated video files (``--predict_videos`` clips of 96 frames at
320x240, FFV1), it times

* ``decode_s``: reading the files at the stored size (OpenCV), one after another;
* ``grids_s``: ``inference.views.items``: decoding and JPEG-storing (as the dataset stores frames) in its
  4 threads, plus evaluation's sampling, JPEG decoding and tiling;
* ``embed_s``: ``Predictor.embed`` end to end (decoding overlaps the model);
* ``model_s``: the jitted model alone on the finished grids;
* ``saved_model_s``: the exported TF SavedModel on the same grids, in TensorFlow;
* ``onnx``: why there is no ONNX figure (``tools.export.ONNX_BLOCKED``).

Weights are random (speed does not depend on them); each timing follows a
warm-up call that compiles, and is the fastest of two runs. Test-time views
are ``config.eval``'s (4 per video), so a video costs 4 grids.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from scfa_jax import config as base_config

flags.DEFINE_integer('predict_videos', 8, 'bench predict: video files to embed per model.')
flags.DEFINE_list('predict_models', ['demo', 'resnet50_224'], 'bench predict: models to time.')
flags.DEFINE_string('agreement_workdir', None, 'bench predict: also measure, on this workdir of a generated dataset '
                    '(synthetic_*), how often classifying source videos agrees with the prepared (JPEG) test split.')


def _config(name: str):
  if name == 'demo':
    from scfa_jax import notebook  # pylint: disable=g-import-not-at-top
    config = notebook.load_config('demo')
  else:
    config = base_config.get_config()  # the paper's: ResNet-50, 4x4 grid of 56 px tiles = 224 px
  config.eval.batch_size = 16
  return config


def random_predictor(config):
  """A Predictor of random weights with a 5-class linear probe: speed and export do not depend on the weights."""
  from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import workdir  # pylint: disable=g-import-not-at-top
  from scfa_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from scfa_jax.evaluation import heads  # pylint: disable=g-import-not-at-top
  from scfa_jax.models import scfa  # pylint: disable=g-import-not-at-top
  model = scfa.create_model(config.model)
  shape = input_pipeline.GridSpec.from_config(config.data).image_shape
  variables = jax.device_get(jax.jit(lambda k: model.init(k, jnp.zeros((1,) + shape), train=False))(
      jax.random.key(0)))
  dim = int(jax.eval_shape(lambda: model.apply(variables, jnp.zeros((1,) + shape)))['features'].shape[1])
  rng = np.random.default_rng(0)
  probe = heads.LinearProbe(mean=np.zeros(dim), scale=np.ones(dim), coef=rng.normal(size=(5, dim)) * 0.01,
                            intercept=np.zeros(5), labels=np.arange(5))
  fitted = heads.Heads(meta={'step': 0}, probe=probe, memory=None)
  return Predictor(config, workdir.Model(model, {'params': variables['params'],
                                                 'batch_stats': variables['batch_stats']}, 0, ''),
                   preprocessing_mode='imagenet', class_names=[f'class{i}' for i in range(5)], heads=fitted)


def _videos(folder: str, count: int) -> list[str]:
  rng = np.random.default_rng(0)
  paths = []
  for i in range(count):
    paths.append(os.path.join(folder, f'clip{i}.avi'))
    writer = cv2.VideoWriter(paths[-1], cv2.VideoWriter_fourcc(*'FFV1'), 25, (320, 240))
    base = rng.integers(0, 255, (240, 320, 3), np.uint8)
    for t in range(96):
      writer.write(np.roll(base, 3 * t, axis=1))
    writer.release()
  return paths


def _timed(fn, repeats: int = 2) -> tuple[float, Any]:
  """(the fastest of ``repeats`` runs in seconds, the output): the least disturbed run on a shared machine."""
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn()
    best = min(best, time.perf_counter() - start)
  return best, out


def bench_model(name: str, paths: list[str], folder: str) -> dict[str, Any]:
  from scfa_jax.inference import export  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import video  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import views  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  config = _config(name)
  predictor = random_predictor(config)
  n = len(paths)
  predictor.embed(paths[:2])  # compiles
  decode_s, _ = _timed(lambda: [video.read(p, video.storage(config.data)) for p in paths])
  grids_s, items = _timed(lambda: list(views.items(paths, config, predictor.views, jpeg_quality=predictor.jpeg_quality)))
  embed_s, _ = _timed(lambda: predictor.embed(paths))
  grids = np.concatenate([item.grids for item in items])[:16]
  predictor.run_grids(grids)
  model_s, _ = _timed(lambda: jax.block_until_ready(predictor.run_grids(grids)))
  model_s *= len(items) * predictor.views.per_video / len(grids)  # per the same number of grids as the videos
  out = os.path.join(folder, f'{name}_saved_model')
  export.save_saved_model(predictor, out, 'probe')
  serve = tf.saved_model.load(out).signatures['serving_default']
  serve(images=tf.constant(grids))
  saved_s, _ = _timed(lambda: serve(images=tf.constant(grids))['embedding'].numpy())
  saved_s *= len(items) * predictor.views.per_video / len(grids)
  image = f'{config.data.grid_rows * config.data.tile_size} px'
  return {
      'model': f'ResNet-{config.model.depth} width {config.model.width}, {image} grids',
      'videos': n,
      'views_per_video': predictor.views.per_video,
      'decode_s': round(decode_s, 3),
      'grids_s': round(grids_s, 3),
      'model_s': round(model_s, 3),
      'embed_s': round(embed_s, 3),
      'embed_videos_per_s': round(n / embed_s, 2),
      'model_only_videos_per_s': round(n / model_s, 2),
      'saved_model_s': round(saved_s, 3),
      'saved_model_videos_per_s': round(n / saved_s, 2),
  }


def source_agreement(workdir: str, folder: str) -> dict[str, Any]:
  """Top-1 agreement of ``classify`` on the test clips rendered again (lossless FFV1 files) vs evaluation's.

  Evaluation's side classifies the stored (JPEG) frames as decoded, without a
  second storage round trip; the files get inference's own (``video.store``).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from scfa_jax import datasets  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
  predictor = Predictor.from_workdir(workdir)
  as_stored = Predictor.from_workdir(workdir, storage_round_trip=False)  # frames decoded from the dataset
  builder = datasets.get_builder(predictor.config.data)
  cfg = builder.builder_config
  stored, paths = [], []
  for ex in builder.as_dataset(split=predictor.config.data.test_split, shuffle_files=False,
                               decoders={'frames': tfds.decode.SkipDecoding()}).as_numpy_iterator():
    clip_id = ex['video_id'].decode()
    name, _, index = clip_id.rsplit('_', 2)
    label = builder.info.features['label'].str2int(name)
    rng = np.random.default_rng([cfg.seed, 1, label, int(index)])
    raw = builder.render_clip(rng, label, frame_size=cfg.frame_size,
                              num_frames=int(rng.integers(cfg.min_frames, cfg.max_frames + 1)))
    stored.append(np.stack([tf.io.decode_image(f, channels=3).numpy() for f in ex['frames']]))
    paths.append(os.path.join(folder, f'{clip_id}.avi'))
    writer = cv2.VideoWriter(paths[-1], cv2.VideoWriter_fourcc(*'FFV1'), 25, raw.shape[2:0:-1])
    for frame in raw:
      writer.write(frame[..., ::-1])
    writer.release()
  head = predictor.resolve_head(None)
  files = [p.classes[0] for p in predictor.classify(paths, top_k=1, head=head)]
  jpeg = [p.classes[0] for p in as_stored.classify(stored, top_k=1, head=head)]
  return {'workdir': workdir, 'head': head, 'test_videos': len(paths),
          'agreement': round(float(np.mean(np.asarray(files) == np.asarray(jpeg))), 4)}


def run() -> dict[str, Any]:
  from scfa_jax.tools import export as export_tool  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  with tempfile.TemporaryDirectory() as folder:
    paths = _videos(folder, f.predict_videos)
    results = {name: bench_model(name, paths, folder) for name in f.predict_models}
    if f.agreement_workdir:
      results['source_agreement'] = source_agreement(f.agreement_workdir, folder)
  results['onnx'] = export_tool.ONNX_BLOCKED
  results['devices'] = f'{jax.device_count()} x {jax.devices()[0].device_kind}'
  results['load_average_1min'] = os.getloadavg()[0]
  return results
