"""The inference commands: predict, embed and search, in process, and once each as a program (exit codes)."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from scfa_jax import errors
from scfa_jax.inference import Predictor
from scfa_jax.inference import index
from scfa_jax.inference import video
from scfa_jax.tools import embed
from scfa_jax.tools import predict
from scfa_jax.tools import search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_clip(path, seed, num_frames=30, size=(40, 32)):
  rng = np.random.default_rng(seed)
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'FFV1'), 10, size)
  for _ in range(num_frames):
    writer.write(rng.integers(0, 255, (size[1], size[0], 3), np.uint8))
  writer.release()
  return str(path)


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
  folder = tmp_path_factory.mktemp('clips')
  (folder / 'sub').mkdir()
  paths = [_write_clip(folder / 'a.avi', 0), _write_clip(folder / 'sub' / 'b.avi', 1), _write_clip(folder / 'c.avi', 2)]
  (folder / 'broken.mp4').write_bytes(b'\x00' * 100)
  return str(folder), paths


@pytest.fixture(scope='module')
def predictor(evaluated_workdir):
  return Predictor.from_workdir(evaluated_workdir[1])


def test_predict_skips_a_bad_file_and_names_it(predictor, clips):
  folder, paths = clips
  found = video.find_videos([folder])  # recursive, sorted
  assert found == sorted(found) and len(found) == 4
  out = io.StringIO()
  skipped = predict.classify_files(predictor, found, top_k=3, head='probe', as_json=False, stream=out)
  lines = out.getvalue().splitlines()
  assert [name for name, _ in skipped] == [os.path.join(folder, 'broken.mp4')]
  assert len(lines) == 3 and all(line.count('%') == 3 and line.endswith('[probe]') for line in lines)


def test_timeline_files(predictor, clips, tmp_path):
  _, paths = clips
  out = io.StringIO()
  assert predict.timelines(predictor, [paths[0]], window_s=1.0, stride_s=0.5, head=None, out_dir=str(tmp_path),
                           as_json=False, stream=out) == []
  with open(tmp_path / 'a_timeline.csv') as f:
    rows = list(csv.reader(f))
  assert [float(r[0]) for r in rows[1:]] == [0.0, 0.5, 1.0, 1.5, 2.0] and len(rows[0]) == 3 + 6
  np.testing.assert_allclose(np.asarray([r[3:] for r in rows[1:]], float).sum(axis=1), 1.0, atol=1e-5)
  assert (tmp_path / 'a_timeline.png').read_bytes()[:4] == b'\x89PNG' and (tmp_path / 'a_timeline.json').exists()


def test_embed_resumes_without_redoing_finished_videos(predictor, clips, tmp_path):
  _, paths = clips
  out = str(tmp_path / 'emb.csv')
  assert embed.embed_to_file(predictor, paths[:2], out)[0] == 2
  with open(out, 'a') as f:
    f.write(paths[2] + ',,0.5')  # an interrupted run's cut-off line
  count, skipped = embed.embed_to_file(predictor, paths, out)
  assert (count, skipped) == (1, [])
  table = index.load(out)
  assert table.names == [os.path.realpath(p) for p in paths] and table.features.shape == (3, 32)
  np.testing.assert_allclose(table.features, predictor.embed(paths), atol=1e-6)
  plain = np.loadtxt(out, delimiter=',', skiprows=2, usecols=range(2, 34))  # numpy alone reads it too
  np.testing.assert_array_equal(plain.astype(np.float32), table.features)


def test_search_finds_the_query_itself_first(predictor, clips, tmp_path):
  _, paths = clips
  out = str(tmp_path / 'emb.csv')
  embed.embed_to_file(predictor, paths, out)
  results = search.search(predictor, [paths[1]], index.load(out), k=2)
  assert results[0]['neighbours'][0]['video'] == paths[1]
  assert results[0]['neighbours'][0]['similarity'] == pytest.approx(1.0, abs=1e-5)
  train = search.search(predictor, [paths[1]], search.load_index(predictor, None), k=3)[0]['neighbours']
  assert len(train) == 3 and all(n['label'] in predictor.class_names for n in train)
  assert train[0]['video'] in predictor.heads.memory.clip_ids


def _run(module, *args):
  env = {**os.environ, 'PYTHONPATH': ROOT}
  return subprocess.run([sys.executable, '-m', f'scfa_jax.tools.{module}', *args], capture_output=True, text=True,
                        env=env, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_predict_program_exit_status(evaluated_workdir, clips, tmp_path):
  folder, paths = clips
  odd = os.path.join(os.fsencode(tmp_path), b'caf\xe9.avi')  # a name that is not UTF-8: OpenCV crashed on it
  shutil.copyfile(paths[0], odd)
  _write_clip(tmp_path / 'whole.mp4', 3)
  (tmp_path / 'cut.mp4').write_bytes((tmp_path / 'whole.mp4').read_bytes()[:600])  # FFmpeg: moov atom not found
  os.remove(tmp_path / 'whole.mp4')
  done = _run('predict', f'--workdir={evaluated_workdir[1]}', '--top_k=2', '--json', folder, str(tmp_path),
              str(tmp_path / 'missing.avi'))
  assert done.returncode == 1, done.stderr
  videos = [json.loads(line)['video'] for line in done.stdout.strip().splitlines()]
  assert len(videos) == 4 and os.path.join(str(tmp_path), 'caf\\xe9.avi') in videos
  assert 'skipped' in done.stderr and 'Traceback' not in done.stderr
  for name in ('broken.mp4', 'cut.mp4', 'missing.avi'):  # each skip named once, on one line
    assert done.stderr.count(name) == 1, done.stderr
  # Only the command's own lines: no TensorFlow/XLA C++ start-up lines (oneDNN, absl::InitializeLog), no
  # OpenCV/FFmpeg lines ("[ WARN:0@6.4] global cap.cpp", "moov atom not found"), no module path as a prefix.
  for noise in ('oneDNN', 'absl::InitializeLog', 'WARN', 'moov', 'cap.cpp', ROOT):
    assert noise not in done.stderr, done.stderr


def test_embed_refuses_a_folder_without_videos_before_the_model_loads(evaluated_workdir, tmp_path):
  def load(*args, **kwargs):
    raise AssertionError('the model loaded')
  # A UserError: the command prints it in one line and exits 1 (as predict's exit status above shows).
  with pytest.raises(video.NoVideosError, match='no video file in this folder') as refused:
    embed.embed_command(evaluated_workdir[1], [str(tmp_path)], str(tmp_path / 'e.csv'), load=load)
  assert refused.value.exit_code == 1 and not (tmp_path / 'e.csv').exists()


def test_search_names_a_missing_index(predictor, tmp_path):
  with pytest.raises(errors.MissingFilesError, match='none.csv: no such embedding file'):
    search.load_index(predictor, str(tmp_path / 'none.csv'))


@pytest.mark.slow
def test_search_program_answers_readable_queries_in_json(evaluated_workdir, clips, tmp_path):
  folder, paths = clips
  broken = os.path.join(folder, 'broken.mp4')
  done = _run('search', f'--workdir={evaluated_workdir[1]}', f'--query={paths[0]},{broken}', '--k=2', '--json',
              f'--png={tmp_path}/n.png')
  assert done.returncode == 1 and 'Traceback' not in done.stderr, done.stderr
  answers = [json.loads(line) for line in done.stdout.splitlines()]  # stdout is JSON lines only
  assert [a['query'] for a in answers] == [paths[0]] and len(answers[0]['neighbours']) == 2
  assert done.stderr.count('broken.mp4') == 1 and (tmp_path / 'n.png').read_bytes()[:4] == b'\x89PNG'


@pytest.mark.slow
@pytest.mark.parametrize('head', ['finetune', 'probe'])
def test_saved_model_matches_jax_on_real_grids(predictor, evaluated_workdir, head, tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import export  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import views  # pylint: disable=g-import-not-at-top
  from tests.test_inference import _split  # pylint: disable=g-import-not-at-top
  videos = _split(evaluated_workdir[0], 'test')[0][:3]
  grids = np.concatenate([item.grids for item in views.items(videos, predictor.config, views.ViewSpec(1, 0))])
  export.save_saved_model(predictor, str(tmp_path), head)
  with open(tmp_path / export.META_FILE) as f:
    meta = json.load(f)
  assert meta['class_names'] == predictor.class_names and meta['input']['shape'] == ['batch', 16, 16, 3]
  served = tf.saved_model.load(str(tmp_path)).signatures['serving_default'](images=tf.constant(grids))  # batch 3
  features = predictor.run_grids(grids)['features']
  expected = (predictor.heads.probe.predict_proba(features, 6) if head == 'probe' else
              tf.nn.softmax(predictor.run_grids(grids, 'finetune')['logits']).numpy())
  np.testing.assert_allclose(served['embedding'].numpy(), features, atol=1e-4)
  np.testing.assert_allclose(served['probabilities'].numpy(), expected, atol=1e-4)
