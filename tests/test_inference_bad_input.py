"""Inference on a real collection: odd names, unreadable and missing paths, killed runs, other models' files.

In process where the behaviour is the library's; one SIGKILLed ``embed`` and a
few ``--help``/flag runs as programs. The other program runs (predict's
skips and console, search's JSON stream) extend those of test_inference_tools.py.
"""

import dataclasses
import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from scfa_jax import errors
from scfa_jax.evaluation import heads as heads_lib
from scfa_jax.inference import Predictor
from scfa_jax.inference import cli
from scfa_jax.inference import identity
from scfa_jax.inference import index
from scfa_jax.inference import paths
from scfa_jax.tools import embed
from scfa_jax.tools import predict
from scfa_jax.tools import search
from tests.test_inference_tools import _write_clip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATIN1 = b'caf\xe9.avi'  # a file name that is not valid UTF-8


@pytest.fixture(scope='module')
def predictor(evaluated_workdir):
  return Predictor.from_workdir(evaluated_workdir[1])


@pytest.fixture(scope='module')
def collection(tmp_path_factory):
  """A folder as users have them: nested clips of one name, a Latin-1 name, a truncated MP4, a non-video."""
  folder = tmp_path_factory.mktemp('collection')
  for sub in ('a', 'b'):
    (folder / sub).mkdir()
  clips = [_write_clip(folder / 'a' / 'clip.avi', 10), _write_clip(folder / 'b' / 'clip.avi', 11)]
  latin1 = os.path.join(os.fsencode(folder), LATIN1)
  shutil.copyfile(clips[0], latin1)
  _write_clip(folder / 'whole.mp4', 12)
  with open(folder / 'whole.mp4', 'rb') as f:
    (folder / 'cut.mp4').write_bytes(f.read()[:600])  # no moov atom: FFmpeg and OpenCV complain in C++
  os.remove(folder / 'whole.mp4')
  (folder / 'notes.txt').write_text('not a video')
  return str(folder), clips, os.fsdecode(latin1)


def test_listing_skips_and_counts_what_it_cannot_read(collection, tmp_path, monkeypatch):
  folder, clips, latin1 = collection
  spelled = paths.list_videos([folder, './' + os.path.relpath(folder) + '/', clips[0]])
  assert [paths.key(v) for v in spelled.videos] == [paths.key(v) for v in paths.list_videos([folder]).videos]
  assert len(spelled.videos) == 4 and latin1 in spelled.videos and not spelled.skipped  # each video once
  assert paths.display(latin1).endswith('caf\\xe9.avi') and paths.undisplay(paths.display(latin1)) == latin1
  assert paths.key('gs://bucket/clips/a.mp4') == 'gs://bucket/clips/a.mp4'  # object storage: its own key
  listed = tmp_path / 'list.txt'
  listed.write_text(f'{clips[0]}\n# a comment\n{tmp_path / "deleted.avi"}\n')
  found = paths.list_videos(paths.expand([str(listed), str(tmp_path / 'missing')]))
  assert found.videos == [clips[0]]
  assert [(os.path.basename(n), str(e)) for n, e in found.skipped] == [
      ('deleted.avi', 'no such file or folder.'), ('missing', 'no such file or folder.')]
  # Permissions: the tests run as root, where chmod 000 does not stop a read, so the OS calls fail here instead.
  real_access, real_scandir = os.access, os.scandir
  monkeypatch.setattr(os, 'access', lambda p, mode: False if os.fspath(p) == clips[1] else real_access(p, mode))

  def scandir(p):
    if os.fspath(p) == os.path.join(folder, 'a'):
      raise PermissionError(errno.EACCES, 'Permission denied', os.fspath(p))
    return real_scandir(p)

  monkeypatch.setattr(os, 'scandir', scandir)
  denied = paths.list_videos([folder])
  assert sorted(os.path.basename(v) for v in denied.videos) == ['caf\udce9.avi', 'cut.mp4']
  assert sorted((n, str(e).split(' (')[0].split(';')[0]) for n, e in denied.skipped) == [
      (os.path.join(folder, 'a'), 'cannot list this folder'), (clips[1], 'permission denied')]
  with pytest.raises(errors.UserError, match='cannot list this folder'):  # the whole folder unreadable
    embed.embed_command('/nowhere', [os.path.join(folder, 'a')], str(tmp_path / 'e.csv'))


def test_a_latin1_name_is_read_and_named_losslessly(predictor, collection):
  """OpenCV crashed (SIGSEGV) when handed a path that is not UTF-8; it now reads it through an ASCII symlink."""
  folder, clips, latin1 = collection
  out = list(predictor.outputs([latin1, clips[0]]))
  assert [o.error for o in out] == [None, None]
  np.testing.assert_array_equal(out[0].values['features'], out[1].values['features'])  # the same bytes
  with pytest.raises(Exception, match=r'caf\\xe9\.avi: permission denied') as caught:
    with pytest.MonkeyPatch.context() as m:
      m.setattr(os, 'access', lambda p, mode: False)
      predictor.embed([latin1])
  assert 'scfa_video_' not in str(caught.value)  # never the temporary alias's name


def test_timelines_of_same_named_files_do_not_overwrite_each_other(predictor, collection, tmp_path):
  folder, clips, latin1 = collection
  assert paths.output_names(clips + [latin1]) == ['a/clip', 'b/clip', 'caf\\xe9']
  skipped = predict.timelines(predictor, clips, window_s=1.0, stride_s=1.0, head='probe', out_dir=str(tmp_path),
                              as_json=True, stream=open(os.devnull, 'w'))
  assert skipped == []
  written = sorted(os.path.relpath(os.path.join(r, n), tmp_path) for r, _, ns in os.walk(tmp_path) for n in ns)
  assert written == [f'{s}/clip_timeline.{e}' for s in 'ab' for e in ('csv', 'json', 'png')]
  assert (tmp_path / 'a' / 'clip_timeline.csv').read_text() != (tmp_path / 'b' / 'clip_timeline.csv').read_text()


def test_embed_saves_each_video_as_it_is_done_and_resumes_by_real_path(predictor, collection, tmp_path):
  folder, clips, latin1 = collection
  out = str(tmp_path / 'emb.csv')
  rows_seen = []

  class Spy:
    """The predictor, noting how many rows the file holds each time the next video is asked for."""

    def __getattr__(self, name):
      return getattr(predictor, name)

    def outputs(self, videos, which='encoder'):
      for o in predictor.outputs(videos, which):
        rows_seen.append(len(index.read_embeddings(out).names) if os.path.exists(out) else 0)
        yield o

  videos = paths.list_videos([folder]).videos
  count, skipped = embed.embed_to_file(Spy(), videos, out)
  assert count == 3 and [os.path.basename(n) for n, _ in skipped] == ['cut.mp4']
  # Each video is saved before the next one is handed over (cut.mp4, unreadable, needs no batch: it comes first).
  assert rows_seen == [0, 0, 1, 2]
  table = index.read_embeddings(out)
  assert table.names == [paths.key(v) for v in videos[:3]] and table.identity.dim == 32
  assert table.identity.step == predictor.encoder.step and 'caf\\xe9.avi' in table.names[2]
  # The same folder spelled another way, and a .txt list (relative paths): nothing is embedded twice.
  listed = tmp_path / 'list.txt'
  listed.write_text(os.path.relpath(clips[1], tmp_path) + '\n')
  again = paths.list_videos(paths.expand(['./' + os.path.relpath(folder) + '/', str(listed)])).videos
  assert embed.embed_to_file(predictor, again, out)[0] == 0
  assert len(index.read_embeddings(out).names) == 3


def test_another_models_file_is_refused_before_any_work(predictor, evaluated_workdir, collection, tmp_path):
  _, workdir, _ = evaluated_workdir
  folder, clips, _ = collection
  out = str(tmp_path / 'emb.csv')
  embed.embed_to_file(predictor, clips[:1], out)
  before = open(out, 'rb').read()
  steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints')) if s.isdigit())
  older = Predictor.from_workdir(workdir, step=steps[0])
  asked = []

  class Counting:
    def __getattr__(self, name):
      return getattr(older, name)

    def outputs(self, videos, which='encoder'):
      asked.extend(videos)
      return older.outputs(videos, which)

  with pytest.raises(identity.OtherModelError, match=f'step {steps[-1]}.*not of .*step {steps[0]}.*--step=') as e:
    embed.embed_to_file(Counting(), clips, out)
  assert out in str(e.value) and '\n' not in str(e.value) and asked == [] and open(out, 'rb').read() == before
  # The command refuses it before the model loads, and loads nothing when nothing is left to do.
  def no_model(*args, **kwargs):
    raise AssertionError('the model was loaded')

  with pytest.raises(identity.OtherModelError):
    embed.embed_command(workdir, [clips[1]], out, step=steps[0], load=no_model)
  assert embed.embed_command(workdir, [clips[0]], out, load=no_model) == 0
  # search: the index of step N is not searched with the model of another step.
  with pytest.raises(identity.OtherModelError, match='search it with'):
    search.load_index(older, out)
  # ... nor the same index in Parquet (embed_beam's format), whose identity lives in the file's metadata.
  from scfa_jax.inference import parquet_index  # pylint: disable=g-import-not-at-top
  written = index.read_embeddings(out)
  as_parquet = str(tmp_path / 'emb.parquet')
  writer = parquet_index.Writer(as_parquet, written.features.shape[1], written.identity.to_json())
  for name, vector in zip(written.names, written.features):
    writer.write(name, '', vector)
  writer.close()
  with pytest.raises(identity.OtherModelError, match=f'step {steps[-1]}.*not of .*step {steps[0]}.*search it with'):
    search.load_index(older, as_parquet)
  assert search.load_index(predictor, as_parquet).names == written.names  # its own model searches it
  # Heads of another step: what is true, and commands that write heads for that step.
  with pytest.raises(heads_lib.NoHeadsError, match=f'heads for step {steps[-1]} only, not for step {steps[0]}') as h:
    older.resolve_head(None)
  assert f'checkpoints/{steps[0]}' in str(h.value) and '--mode=eval' in str(h.value)


def test_a_file_that_is_not_an_embedding_file_is_left_untouched(tmp_path):
  wanted = identity.Identity(workdir='/w', step=6, config='abc', views='2 clips + 0 local', dim=2)
  foreign = tmp_path / 'n.csv'
  foreign.write_bytes(b'name,value\nalpha,1\nbeta,2')  # no newline at the end, like a cut-off row
  for attempt in (lambda: index.Writer(str(foreign), wanted), lambda: embed.check_out(str(foreign), wanted),
                  lambda: index.read_embeddings(str(foreign))):
    with pytest.raises(errors.BadFilesError, match='not an embedding file'):
      attempt()
    assert foreign.read_bytes() == b'name,value\nalpha,1\nbeta,2'
  old = tmp_path / 'old.csv'  # the first format: no identity line; still read, never extended
  old.write_text('video,label,e0,e1\n"a,b.mp4",,1,2\n')
  assert index.read_embeddings(str(old)).names == ['a,b.mp4'] and index.read_embeddings(str(old)).identity is None
  with pytest.raises(identity.OtherModelError, match='does not record which model'):
    index.Writer(str(old), wanted)


def test_skip_lines_name_each_input_once(capsys):
  name = '/data/caf\udce9.mp4'
  code = cli.report_skipped([(name, ValueError(f'{name}: OpenCV cannot open it.')),
                             ('gone.avi', OSError('no such file or folder.'))], 5)
  lines = capsys.readouterr().err.splitlines()
  assert code == 1 and lines == ['  /data/caf\\xe9.mp4: OpenCV cannot open it.', '  gone.avi: no such file or folder.']


def test_search_answers_the_queries_it_can_read(predictor, collection, tmp_path):
  folder, clips, _ = collection
  skipped = []
  results = search.search(predictor, [clips[0], os.path.join(folder, 'cut.mp4'), clips[1]],
                          search.load_index(predictor, None), k=2, skipped=skipped)
  assert [r['query'] for r in results] == [clips[0], clips[1]] and len(results[1]['neighbours']) == 2
  assert [os.path.basename(n) for n, _ in skipped] == ['cut.mp4']


def _tool(module, *args, **kwargs):
  return subprocess.Popen([sys.executable, '-m', f'scfa_jax.tools.{module}', *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, 'PYTHONPATH': ROOT},
                          **kwargs)


@pytest.mark.slow(seconds=4)
def test_help_and_bad_flags_exit_before_any_work():
  runs = {m: _tool(m, '--help') for m in ('predict', 'embed', 'search', 'export')}
  runs["k"] = _tool("search", "--workdir=/nowhere", '--query=x.avi', '--k=0')
  done = {m: (p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for m, p in runs.items()}
  for module in ('predict', 'embed', 'search', 'export'):
    code, out, err = done[module]
    assert code == 0 and '--workdir' in out and f'scfa_jax.tools.{module}' in out, (module, code, out, err)
  code, _, err = done['k']
  assert code == 2 and err.startswith('python -m scfa_jax.tools.search: error: --k=0'), err


def _rows(path):
  """Whole data rows in an embedding file (its two header lines and a cut-off last line left out)."""
  if not os.path.exists(path):
    return 0
  with open(path, 'rb') as f:
    return max(0, f.read().count(b'\n') - 2)


@pytest.mark.slow(seconds=15)
def test_a_killed_embed_keeps_what_it_finished(evaluated_workdir, predictor, tmp_path):
  """SIGKILL mid-run: the videos done so far are in the file; the next run embeds only the others."""
  folder = tmp_path / 'many'
  folder.mkdir()
  first = _write_clip(folder / 'v00.avi', 0)
  for i in range(1, 40):
    shutil.copyfile(first, folder / f'v{i:02d}.avi')
  out = str(tmp_path / 'emb.csv')
  run = _tool('embed', f'--workdir={evaluated_workdir[1]}', f'--videos={folder}', f'--out={out}')
  deadline = time.monotonic() + 240
  while _rows(out) == 0 and run.poll() is None and time.monotonic() < deadline:
    time.sleep(0.01)
  run.send_signal(signal.SIGKILL)
  run.wait()
  assert run.returncode == -signal.SIGKILL, f'finished before a row was saved: {run.stderr.read()}'
  kept = index.read_embeddings(out).names
  assert 1 <= len(kept) < 40
  count, skipped = embed.embed_to_file(predictor, paths.list_videos([str(folder)]).videos, out)
  table = index.read_embeddings(out)
  assert (count, skipped) == (40 - len(kept), []) and len(set(table.names)) == len(table.names) == 40
  np.testing.assert_allclose(table.features, np.repeat(table.features[:1], 40, axis=0), atol=1e-6)


def test_identity_checks_every_field():
  base = identity.Identity(workdir='/w', step=6, config='abc', views='2 clips + 0 local', dim=32)
  identity.check('f.csv', base, dataclasses.replace(base, dim=None), fix='x')  # dim unknown before loading
  for change in ({'workdir': '/v'}, {'step': 4}, {'config': 'abd'}, {'views': '1 clips + 0 local'}, {'dim': 8}):
    with pytest.raises(identity.OtherModelError, match='f.csv holds embeddings of /w step 6'):
      identity.check('f.csv', base, dataclasses.replace(base, **change), fix='x')
  assert identity.Identity.from_json(base.to_json()) == base


def test_a_batch_waits_at_most_max_wait_s_for_slow_decoding():
  """Slow decoding must not hold finished videos back: a partial batch goes after max_wait_s."""
  from scfa_jax.inference import views  # pylint: disable=g-import-not-at-top

  def slow_stream():
    for i in range(5):
      time.sleep(0.03)
      yield views.Item(i, f'v{i}', grids=np.zeros((1, 2, 2, 3), np.uint8))

  sizes = [len(b) for b in views.batches(slow_stream(), 64, max_wait_s=0.05)]
  assert sum(sizes) == 5 and max(sizes) <= 3  # 0.03 s apart: the third arrives >= 0.06 s after the first
  assert [len(b) for b in views.batches(slow_stream(), 64)] == [5]
