"""The web page (python -m scfa_jax.tools.serve): its values without a browser, then the page in headless Chromium.

The page logic (``serve.page``) is checked against the inference API on the
session's ``evaluated_workdir`` (on a fused workdir in tests/test_fused_views.py,
which trains one anyway); the browser tests start the Gradio server on a free
loopback port in this process and drive the distribution's Chromium with
Playwright (one browser for all of them). Without Chromium, Playwright or
Gradio they skip, except in CI, where they fail.
"""

import os
import shutil
import socket
import threading

import numpy as np
import pytest

from scfa_jax.evaluation import gallery
from scfa_jax.inference import index as index_lib
from scfa_jax.inference import timeline as timeline_lib
from scfa_jax.inference import views as views_lib
from scfa_jax.serve import examples as examples_lib
from scfa_jax.serve import page as page_lib


@pytest.fixture(scope='module')
def page(evaluated_workdir):
  return page_lib.Page.from_workdir(evaluated_workdir[1], top_k=3, k=4)


@pytest.fixture(scope='module')
def clips(page, tmp_path_factory):
  """Two test-split videos written as the page's examples (WebM)."""
  folder = str(tmp_path_factory.mktemp('serve_examples'))
  found = examples_lib.test_split_examples(page.predictor.config, folder, count=2,
                                           class_names=page.predictor.class_names)
  assert len(found) == 2 and all(os.path.getsize(f) > 0 for f in found)
  return found


@pytest.mark.slow(seconds=20)  # 105 s of CPU measured with the shared fixture's training (~80 s) in its setup
def test_the_page_shows_what_the_inference_api_says(page, clips, evaluated_workdir):
  config = evaluated_workdir[0]
  answer = page.answer(clips[0], window_s=0.2, stride_s=0.1)
  assert not answer.message
  expected = page.predictor.classify([clips[0]], top_k=3)[0]
  assert answer.head == expected.head and list(answer.top_k) == expected.classes
  np.testing.assert_allclose(list(answer.top_k.values()), expected.probabilities, atol=1e-6)
  # The grids are evaluation's test views of the file (2 clips here), enlarged without changing a pixel.
  item = next(views_lib.items([clips[0]], config, page.predictor.views, jpeg_quality=page.predictor.jpeg_quality))
  assert [c for _, c in answer.views] == ['clip 1 of 2: global grid', 'clip 2 of 2: global grid']
  for (shown, _), grid in zip(answer.views, item.grids):
    factor = shown.shape[0] // grid.shape[0]
    assert factor >= 2 and np.array_equal(shown[::factor, ::factor], grid)
  # Neighbours: the train split's nearest by cosine, each shown with the grid evaluation made of that video.
  rows, sims = index_lib.nearest(page.index.features, page.predictor.embed([clips[0]]), k=4)
  np.testing.assert_allclose(answer.similarities, sims[0], atol=1e-5)
  builder = __import__('scfa_jax.datasets', fromlist=['get_builder']).get_builder(config.data)
  truth = gallery.read_grids(builder, config.data.train_split, config.data, rows[0].tolist())
  for (shown, caption), row in zip(answer.neighbours, rows[0]):
    factor = shown.shape[0] // truth[row].shape[0]
    assert np.array_equal(shown[::factor, ::factor], truth[row]) and page.index.names[row] in caption
  # The timeline is inference.timeline's: the same windows and probabilities as timeline.score.
  score = timeline_lib.score(page.predictor, clips[0], window_s=0.2, stride_s=0.1, head=answer.head)
  assert len(score.starts) > 1 and os.path.getsize(answer.timeline_png) > 0
  np.testing.assert_allclose(answer.timeline.starts, score.starts)
  np.testing.assert_allclose(answer.timeline.probabilities, score.probabilities, atol=1e-6)
  assert page.answer(clips[0]).timeline is None  # 0.4 s: one 2-s window, no timeline


def test_bad_input_is_a_message_and_the_page_keeps_answering(page, clips, tmp_path):
  corrupt = tmp_path / 'corrupt.mp4'
  corrupt.write_bytes(b'\x00\x00\x00\x18ftypmp42' + os.urandom(2000))
  empty = tmp_path / 'empty.webm'
  empty.write_bytes(b'')
  for path in (corrupt, empty, tmp_path / 'missing.mp4'):
    answer = page.answer(str(path))
    assert path.name in answer.message and not answer.top_k and not answer.views, answer
  assert 'must be > 0' in page.answer(clips[0], window_s=0).message
  assert page.answer(clips[1]).top_k  # still serving


# ----------------------------------------------------------------------------- in a real browser


def _chromium() -> str:
  """The distribution's Chromium with Playwright to drive it; skips without them (fails in CI)."""
  path = shutil.which('chromium') or shutil.which('chromium-browser')
  try:
    import gradio  # pylint: disable=g-import-not-at-top,unused-import
    import playwright.sync_api  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    path = None
  if path is None:
    reason = ('browser tests need Chromium (apt-get install chromium), Playwright and Gradio (the test extra); '
              '.ci/run installs Chromium')
    if os.environ.get('CI'):
      pytest.fail(reason)
    pytest.skip(reason)
  return path


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def server(browser, page, clips):
  """The page served on a free loopback port, in a thread of this process (after the browser: skips with it)."""
  from scfa_jax.serve import app as app_lib  # pylint: disable=g-import-not-at-top
  blocks = app_lib.build(page, clips)
  port = _free_port()
  app_lib.launch(blocks, host='127.0.0.1', port=port, block=False, allowed_paths=[os.path.dirname(clips[0])])
  yield f'http://127.0.0.1:{port}/'
  blocks.close()


@pytest.fixture(scope='module')
def browser():
  executable = _chromium()
  from playwright.sync_api import sync_playwright  # pylint: disable=g-import-not-at-top
  with sync_playwright() as p:
    chromium = p.chromium.launch(executable_path=executable, headless=True, args=['--no-sandbox'])
    yield chromium
    chromium.close()


class _Tab:
  """One browser page on the server; every request that would leave the machine is recorded and blocked."""

  def __init__(self, browser, url: str):
    self.outside: list[str] = []
    self.page = browser.new_page(viewport={'width': 1280, 'height': 900})
    self.page.route('**/*', self._route)
    self.page.goto(url)
    self.page.wait_for_selector('#video input[type=file]', state='attached', timeout=60_000)

  def _route(self, route):
    url = route.request.url
    if url.startswith(('http://127.0.0.1', 'ws://127.0.0.1', 'data:', 'blob:')):
      route.continue_()
    else:
      self.outside.append(url)
      route.abort()

  def upload(self, path: str) -> None:
    """Drops ``path`` on the video box, clearing the previous video first (as a user clicks its x)."""
    clear = self.page.locator('#video button[aria-label="Clear"]')
    if clear.count():
      # The x's click event, not a pointer click: while the video box re-renders, Gradio may show the x twice
      # (a strict-mode error) or lay its player's icon over it (a click that never lands, 30 s).
      clear.first.dispatch_event('click')
      self.status('Drop a video')
    self.page.locator('#video input[type=file]').set_input_files(path)

  def status(self, expected: str, timeout_s: float = 120) -> str:
    self.page.wait_for_function('t => document.querySelector("#status")?.innerText.includes(t)', arg=expected,
                                timeout=timeout_s * 1000)
    return self.page.inner_text('#status')


@pytest.mark.slow(seconds=25)  # with the server's start and Chromium's own CPU: 12 s + ~13 s measured
def test_in_a_browser_a_clip_gets_its_class_grids_and_neighbours(browser, server, page, clips, tmp_path):
  tab = _Tab(browser, server)
  tab.upload(clips[0])
  tab.status('answered in')
  expected = page.predictor.classify([clips[0]], top_k=1)[0].classes[0]
  assert tab.page.inner_text('#top-classes .output-class').strip() == expected
  for gallery_id, count in (('#views', 2), ('#neighbours', 4)):
    images = tab.page.locator(f'{gallery_id} img')
    tab.page.wait_for_function(f'n => [...document.querySelectorAll("{gallery_id} img")]'
                               '.filter(i => i.complete && i.naturalWidth >= 192).length >= n', arg=count)
    assert images.count() >= count
  shown = tab.page.inner_text('#neighbours')  # similarity, class and clip id of each, as the page logic says
  assert all(caption in shown for _, caption in page.answer(clips[0]).neighbours), shown
  tab.page.screenshot(path=str(tmp_path / 'serve.png'), full_page=True)
  assert os.path.getsize(tmp_path / 'serve.png') > 10_000
  # A corrupt file: a message in the page, and the server answers the next upload. That one comes from a new tab:
  # over a video it cannot play, Gradio's player may leave its x unclickable (twice in CI: 120 s, no clear).
  corrupt = tmp_path / 'corrupt.mp4'
  corrupt.write_bytes(b'\x00\x00\x00\x18ftypmp42' + os.urandom(2000))
  tab.upload(str(corrupt))
  assert 'corrupt.mp4' in tab.status('Could not read the video')
  after = _Tab(browser, server)
  after.upload(clips[1])
  after.status('answered in')
  assert not tab.outside + after.outside, f'requests that would have left the machine: {tab.outside + after.outside}'


@pytest.mark.slow(seconds=4)
def test_in_a_browser_two_uploads_at_once_are_both_answered(browser, server, page, clips):
  tabs = [_Tab(browser, server) for _ in clips]
  for tab, clip in zip(tabs, clips):
    tab.upload(clip)
  for tab, clip in zip(tabs, clips):
    tab.status('answered in')
    expected = page.predictor.classify([clip], top_k=1)[0].classes[0]
    assert tab.page.inner_text('#top-classes .output-class').strip() == expected


def test_without_gradio_the_command_names_the_extra(monkeypatch):
  import sys  # pylint: disable=g-import-not-at-top
  from scfa_jax.serve import app as app_lib  # pylint: disable=g-import-not-at-top
  monkeypatch.setitem(sys.modules, 'gradio', None)  # import gradio now raises ImportError
  with pytest.raises(app_lib.MissingExtraError, match=r'pip install -e "\.\[serve\]"'):
    app_lib.import_gradio()
  assert os.environ['GRADIO_ANALYTICS_ENABLED'] == 'False'
