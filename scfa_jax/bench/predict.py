r"""``python -m scfa_jax.bench predict``: videos/s of ``Predictor.embed``, where the time goes, start-up, exports.

On the real sample clips (``--predict_videos_dir``, default ``../shared/real_samples``
beside the checkout: HMDB51 and UCF101 AVIs, 320x240) or, without them,
``--predict_videos`` generated clips of 96 frames at 320x240 (FFV1), for the
demo model and ResNet-50 at 224 px (4x4 grid of 56 px tiles), it times

* ``decode_only_s``: OpenCV decoding every frame of every file (``read``: no
  resizing), in the predictor's threads: the bound for reading files;
* ``read_all_s``: ``inference.video.read``, every frame decoded, converted and
  resized (what the reader did before it read only the sampled frames), 1 thread;
* ``grids_s``: ``inference.views.items``: reading the sampled frames and JPEG-storing them
  (as the dataset stores frames) in the threads, plus evaluation's sampling, JPEG decoding and tiling;
* ``embed_s``: ``Predictor.embed`` end to end (reading overlaps the model), and
  ``embed_vs_decode``: its throughput over ``decode_only_s``'s;
* ``model_s``: the jitted model alone on the finished grids;
* ``saved_model_s`` / ``onnx_s``: the exported TF SavedModel in TensorFlow and
  the ONNX model in onnxruntime (CPU) on the same grids (``onnx_s`` needs the ``onnx`` extra);
* ``cpu_ms_per_video``: where a video's CPU time goes, stage by stage, one
  thread (:func:`stage_costs`), and ``decode_share``, decoding's share of it:
  about what ``embed_vs_decode`` comes to when every stage competes for the cores;
* ``startup``: a whole ``python -m scfa_jax.tools.embed`` process on one clip of
  a saved random-weights workdir of the model: with an empty compilation cache
  (``cold_s``: imports, restore and compilation) and again with the cache it
  left (``warm_s``), against the same clip's embedding time in process.

Weights are random (speed does not depend on them); each timing follows a
warm-up call that compiles, and is the fastest of two runs. Test-time views
are ``config.eval``'s (4 per video), so a video costs 4 grids.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from scfa_jax import config as base_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLES = os.path.join(os.path.dirname(ROOT), 'shared', 'real_samples')

flags.DEFINE_string('predict_videos_dir', SAMPLES, 'bench predict: a folder of video files to embed (searched '
                    'recursively); when it does not exist, --predict_videos generated clips are used.')
flags.DEFINE_integer('predict_videos', 8, 'bench predict: generated video files to embed per model, without '
                     '--predict_videos_dir.')
flags.DEFINE_list('predict_models', ['demo', 'resnet50_224'], 'bench predict: models to time.')
flags.DEFINE_bool('predict_startup', True, 'bench predict: also time whole embed processes (start-up + compile).')
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


def _decode_only(path: str) -> int:
  """Decodes every frame of a file (OpenCV ``read``, nothing else): the least any reader of it does."""
  capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
  count = 0
  while capture.read()[0]:
    count += 1
  capture.release()
  return count


def stage_costs(predictor, paths: list[str]) -> dict[str, float]:
  """CPU milliseconds a video of each stage of reading, one thread (``time.process_time``), averaged over ``paths``.

  ``decode_ms``: FFmpeg decoding every frame (``grab``); ``second_pass_ms``: the
  same again for files whose container states a wrong frame count, averaged over
  all files (``read_sampled_frames`` then walks the stream twice);
  ``convert_ms``: OpenCV's colour conversion of the sampled frames (``retrieve``);
  ``resize_ms``: the builders' resize of them to the stored size (kept for
  bit-identical grids); ``jpeg_ms``: storing them as JPEG; ``tile_ms``:
  evaluation's JPEG decoding, sampling and tiling (the traced ``Tiler``).
  The caller adds the model's share and ``decode_share`` = one decoding pass /
  all of it: what ``embed_vs_decode`` comes to when every stage competes for
  the same cores (more where decoding alone leaves cores idle).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from scfa_jax.datasets import video_io  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import video  # pylint: disable=g-import-not-at-top
  stored = video.storage(predictor.config.data)
  args = video._read_args(stored)  # pylint: disable=protected-access
  total = dict.fromkeys(('decode_ms', 'second_pass_ms', 'convert_ms', 'resize_ms', 'jpeg_ms', 'tile_ms'), 0.0)
  for path in paths:
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    stated = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    side = video_io._shorter_side(capture, args['shorter_side'], args['keep_up_to'])  # pylint: disable=protected-access
    count, frames = 0, {}
    start = time.process_time()
    while capture.grab():
      count += 1
    decode = time.process_time() - start
    capture.release()
    wanted = set(predictor.tiler.used(count))
    if stated <= 0 or set(predictor.tiler.used(stated)) != wanted:
      total['second_pass_ms'] += decode
    total['decode_ms'] += decode
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    raw = {}
    for index in range(count):
      capture.grab()
      if index in wanted:
        start = time.process_time()
        raw[index] = capture.retrieve()[1]
        total['convert_ms'] += time.process_time() - start
    capture.release()
    start = time.process_time()
    small = video_io._to_rgb_small  # pylint: disable=protected-access
    for index, frame in raw.items():
      frames[index] = video.fit_to_storage(small(frame, side)[None], stored)[0]
    total['resize_ms'] += time.process_time() - start
    start = time.process_time()
    kept = video.store_used(count, frames, predictor.jpeg_quality)
    total['jpeg_ms'] += time.process_time() - start
    start = time.process_time()
    predictor.tiler.make(tf.constant(kept)).numpy()
    total['tile_ms'] += time.process_time() - start
  return {k: round(1e3 * v / len(paths), 2) for k, v in total.items()}


def _per_grids(seconds: float, grids: int, total: int) -> float:
  return seconds * total / grids  # a timing on ``grids`` grids, scaled to the videos' ``total`` grids


def bench_model(name: str, paths: list[str], folder: str) -> dict[str, Any]:
  from scfa_jax.inference import export  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import video  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import views  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  config = _config(name)
  predictor = random_predictor(config)
  n = len(paths)
  predictor.embed(paths[:2])  # compiles
  with concurrent.futures.ThreadPoolExecutor(predictor.threads) as pool:
    decode_s, counts = _timed(lambda: list(pool.map(_decode_only, paths)))
  read_s, _ = _timed(lambda: [video.read(p, video.storage(config.data)) for p in paths], repeats=1)
  grids_s, items = _timed(lambda: list(views.items(paths, config, predictor.views, jpeg_quality=predictor.jpeg_quality)))
  embed_s, _ = _timed(lambda: predictor.embed(paths))
  total = len(items) * predictor.views.per_video
  grids = np.concatenate([item.grids for item in items])[:16]
  predictor.run_grids(grids)
  model_s, _ = _timed(lambda: jax.block_until_ready(predictor.run_grids(grids)))
  out = os.path.join(folder, f'{name}_saved_model')
  export.save_saved_model(predictor, out, 'probe', platforms=('cpu',))
  serve = tf.saved_model.load(out).signatures['serving_default']
  serve(images=tf.constant(grids))
  saved_s, _ = _timed(lambda: serve(images=tf.constant(grids))['embedding'].numpy())
  image = f'{config.data.grid_rows * config.data.tile_size} px'
  results = {
      'model': f'ResNet-{config.model.depth} width {config.model.width}, {image} grids',
      'videos': n,
      'frames_per_video': round(float(np.mean(counts)), 1),
      'views_per_video': predictor.views.per_video,
      'threads': predictor.threads,
      'decode_only_s': round(decode_s, 3),
      'read_all_s': round(read_s, 3),
      'grids_s': round(grids_s, 3),
      'model_s': round(_per_grids(model_s, len(grids), total), 3),
      'embed_s': round(embed_s, 3),
      'embed_videos_per_s': round(n / embed_s, 2),
      'decode_only_videos_per_s': round(n / decode_s, 2),
      'embed_vs_decode': round(decode_s / embed_s, 3),
      'saved_model_s': round(_per_grids(saved_s, len(grids), total), 3),
  }
  results.update(_onnx(predictor, grids, os.path.join(folder, f'{name}_onnx'), total))
  costs = stage_costs(predictor, paths)
  work = sum(costs.values()) + 1e3 * results['model_s'] / n
  results['cpu_ms_per_video'] = {**costs, 'model_ms': round(1e3 * results['model_s'] / n, 2),
                                 'decode_share': round(costs['decode_ms'] / work, 3)}
  return results


def _onnx(predictor, grids: np.ndarray, out: str, total: int) -> dict[str, Any]:
  """The ONNX model's time in onnxruntime on the grids and its largest difference from JAX, or why not."""
  from scfa_jax import errors  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import export_onnx  # pylint: disable=g-import-not-at-top
  try:
    start = time.perf_counter()
    export_onnx.save_onnx(predictor, out, 'probe')
    convert_s = time.perf_counter() - start
  except errors.MissingDependencyError as e:
    return {'onnx': str(e)}
  session = export_onnx.session(os.path.join(out, export_onnx.MODEL_FILE))
  got = session.run(['embedding'], {'images': grids})[0]
  onnx_s, _ = _timed(lambda: session.run(['embedding'], {'images': grids}))
  return {'onnx_s': round(_per_grids(onnx_s, len(grids), total), 3), 'onnx_convert_s': round(convert_s, 1),
          'onnx_max_abs_diff': float(np.abs(got - predictor.run_grids(grids)['features']).max())}


def random_workdir(config, folder: str) -> str:
  """A workdir holding ``config.json`` and a step-0 checkpoint of random weights: what the commands load."""
  from scfa_jax.training import checkpointing  # pylint: disable=g-import-not-at-top
  from scfa_jax.training import workdir_config  # pylint: disable=g-import-not-at-top
  predictor = random_predictor(config)
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, workdir_config.CONFIG_FILE), 'w') as f:
    json.dump(config.to_dict(), f)
  manager = checkpointing.create_manager(folder, config.ckpt)
  checkpointing.save(manager, 0, dict(predictor.encoder.variables))
  manager.wait_until_finished()
  return folder


def startup(name: str, path: str, folder: str) -> dict[str, Any]:
  """Seconds of whole ``tools.embed`` processes on one clip: with an empty compilation cache, then with it."""
  workdir = random_workdir(_config(name), os.path.join(folder, f'{name}_workdir'))
  env = dict(os.environ, XDG_CACHE_HOME=os.path.join(folder, f'{name}_cache'), PYTHONPATH=ROOT)
  for key in ('JAX_COMPILATION_CACHE_DIR', 'SCFA_JAX_NO_CACHE'):
    env.pop(key, None)
  times = []
  for run_index in range(2):
    out = os.path.join(folder, f'{name}_{run_index}.csv')
    start = time.perf_counter()
    done = subprocess.run([sys.executable, '-m', 'scfa_jax.tools.embed', f'--workdir={workdir}', f'--videos={path}',
                           f'--out={out}'], env=env, capture_output=True, text=True, check=False)
    times.append(time.perf_counter() - start)
    if done.returncode:
      raise RuntimeError(f'tools.embed failed: {done.stderr[-2000:]}')
  return {'cold_s': round(times[0], 2), 'warm_s': round(times[1], 2)}


def videos(folder: str) -> list[str]:
  """The files to embed: ``--predict_videos_dir``'s, else generated clips written into ``folder``."""
  from scfa_jax.inference import video  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  if f.predict_videos_dir and os.path.isdir(f.predict_videos_dir):
    return video.find_videos([f.predict_videos_dir])
  return _videos(folder, f.predict_videos)


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
  f = flags.FLAGS
  results: dict[str, Any] = {}
  with tempfile.TemporaryDirectory() as folder:
    paths = videos(folder)
    results['videos'] = f.predict_videos_dir if os.path.isdir(f.predict_videos_dir or '') else 'generated'
    for name in f.predict_models:
      results[name] = bench_model(name, paths, folder)
      if f.predict_startup:
        results[name]['startup'] = startup(name, paths[0], folder)
    if f.agreement_workdir:
      results['source_agreement'] = source_agreement(f.agreement_workdir, folder)
  results['devices'] = f'{jax.device_count()} x {jax.devices()[0].device_kind}'
  results['load_average_1min'] = os.getloadavg()[0]
  return results


def format_lines(results: dict[str, Any]) -> list[str]:
  """The figures a person reads, one model a line group."""
  lines = []
  for name, r in results.items():
    if not isinstance(r, dict) or 'embed_s' not in r:
      continue
    lines.append(f'{name} ({r["model"]}; {r["videos"]} videos of {r["frames_per_video"]} frames, '
                 f'{r["views_per_video"]} views, {r["threads"]} threads):')
    lines.append(f'  embed {r["embed_videos_per_s"]} videos/s = {r["embed_vs_decode"]:.2f} x decoding alone '
                 f'({r["decode_only_videos_per_s"]} videos/s); reading every frame as before: {r["read_all_s"]} s')
    lines.append(f'  model on the grids: JAX {r["model_s"]} s, SavedModel {r["saved_model_s"]} s, '
                 + (f'ONNX {r["onnx_s"]} s (max |diff| {r["onnx_max_abs_diff"]:.1e})' if 'onnx_s' in r
                    else f'ONNX: {r.get("onnx")}'))
    if 'cpu_ms_per_video' in r:
      c = r['cpu_ms_per_video']
      stages = ', '.join(f'{k[:-3]} {v}' for k, v in c.items() if k.endswith('_ms'))
      lines.append(f'  CPU ms a video, one thread: {stages}; decoding is {c["decode_share"]:.2f} of the work')
    if 'startup' in r:
      lines.append(f'  a whole embed process on one clip: {r["startup"]["cold_s"]} s with an empty compilation '
                   f'cache, {r["startup"]["warm_s"]} s with it')
  return lines
