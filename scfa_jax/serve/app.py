"""The page's Gradio layout: inputs and outputs wired to ``page.Page.answer``.

Local only by default: no share link, no analytics (``GRADIO_ANALYTICS_ENABLED``
is forced off before Gradio is imported), system fonts instead of Google
Fonts, so opening the page sends no request beyond the server it came from.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Sequence

from scfa_jax import errors
from scfa_jax.serve import page as page_lib

INSTALL_HINT = 'pip install -e ".[serve]"'


class MissingExtraError(errors.UserError):
  """Gradio (the ``serve`` extra) is not installed."""


def import_gradio():
  """Gradio, with analytics off; a one-line error naming the extra when it is missing."""
  os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
  try:
    import gradio as gr  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise MissingExtraError(f'The web page needs Gradio, the optional "serve" extra: {INSTALL_HINT} '
                            '(with -c constraints.txt for the tested versions).') from None
  return gr


def theme(gr):
  """Gradio's default look with the browser's own fonts (the default theme fetches Google Fonts)."""
  system = ['system-ui', 'sans-serif']
  return gr.themes.Default(font=system, font_mono=['ui-monospace', 'monospace'])


def outputs_of(answer: page_lib.Answer) -> tuple[Any, ...]:
  """The values of the page's output components, in ``build``'s order."""
  if not answer.video:  # nothing uploaded (or cleared)
    status = answer.message
  elif answer.message:
    status = f'**Could not read the video.** {answer.message}'
  else:
    status = (f'{answer.num_frames} frames, {answer.duration_s:.1f} s; answered in {answer.seconds:.2f} s'
              + (f' (head: {answer.head}).' if answer.head else ' (no saved heads: no classes).'))
  gr = import_gradio()
  return (status, answer.top_k or None, answer.views, answer.neighbours,
          gr.update(value=answer.timeline_png, visible=answer.timeline_png is not None), answer.timeline_note)


def build(page: page_lib.Page, examples: Sequence[str] = ()):
  """The ``gr.Blocks`` of the page (not launched)."""
  gr = import_gradio()
  heads = page.heads()

  def respond(path, head, window_s, stride_s):
    try:
      answer = page.answer(path, head or None, window_s=float(window_s), stride_s=float(stride_s))
    except Exception as e:  # pylint: disable=broad-except  (the server keeps serving; the log has the traceback)
      logging.exception('Answering %s failed', path)
      answer = page_lib.Answer(video=str(path), message=f'{type(e).__name__}: {e}')
    return outputs_of(answer)

  with gr.Blocks(title='scfa_jax', analytics_enabled=False) as blocks:
    gr.Markdown(f'### scfa_jax: what the model says about a video\n{page.describe()}')
    with gr.Row():
      with gr.Column(scale=1):
        video = gr.Video(label='video (drop a file or pick an example)', sources=['upload'], elem_id='video')
        head = gr.Dropdown(heads, value=heads[0] if heads else None, label='head', elem_id='head',
                           interactive=len(heads) > 1, visible=bool(heads))
        with gr.Row():
          window = gr.Number(2.0, label='timeline window (s), Enter applies', minimum=0.1, elem_id='window')
          stride = gr.Number(1.0, label='timeline stride (s), Enter applies', minimum=0.1, elem_id='stride')
        if examples:
          gr.Examples(examples=[[e] for e in examples], inputs=[video], label='test-split examples')
      with gr.Column(scale=1):
        status = gr.Markdown('Drop a video file or pick an example.', elem_id='status')
        top = gr.Label(num_top_classes=page.top_k, label='top classes', elem_id='top-classes', visible=bool(heads))
    views = gr.Gallery(label='what the network sees (evaluation\'s test-time grids)', columns=4, height='auto',
                       object_fit='contain', elem_id='views')  # 4 columns: square cells, nothing cropped
    neighbours = gr.Gallery(label=f'the {page.k} nearest training videos (cosine similarity of encoder features)',
                            columns=page.k, height='auto', object_fit='contain', elem_id='neighbours')
    timeline_note = gr.Markdown(elem_id='timeline-note')
    timeline = gr.Image(label='timeline: class probabilities of sliding windows', type='filepath',
                        elem_id='timeline', visible=False)
    inputs = [video, head, window, stride]
    outputs = [status, top, views, neighbours, timeline, timeline_note]
    for event in (video.change, head.change, window.submit, stride.submit):
      event(respond, inputs, outputs, concurrency_id='model', concurrency_limit=1, show_progress='minimal')
  return blocks


def launch(blocks, *, host: str, port: int, block: bool = True, allowed_paths: Sequence[str] = ()):
  """Serves the page on ``host:port`` (no share link); returns Gradio's (app, local_url, share_url)."""
  gr = import_gradio()
  return blocks.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block,
                       quiet=True, show_error=False, theme=theme(gr), ssr_mode=False,
                       allowed_paths=list(allowed_paths), footer_links=[])
