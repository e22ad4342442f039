r"""Top-k classes of video files, with probabilities, from a trained workdir.

  python -m scfa_jax.tools.predict --workdir=/tmp/scfa_demo clip.mp4 more.avi folder/ [--top_k=5] [--json]
  python -m scfa_jax.tools.predict --workdir=W long.mp4 --window_s=4 --stride_s=2 --out=timelines/

Folders are searched recursively. A path or file that cannot be read is
skipped and named at the end (exit status 1); the others are still
classified. With ``--window_s`` every video gets a timeline of sliding windows
(``<out>/<name>_timeline.json|csv|png``; ``<name>`` keeps the folders below
the inputs' common folder, so two inputs never share a timeline).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string('workdir', None, 'A trained (and evaluated) workdir.', required=True)
  flags.DEFINE_integer('top_k', 5, 'Classes shown per video.')
  flags.DEFINE_enum('head', None, ['finetune', 'classifier', 'probe', 'knn'],
                    'Classifier to use (default: the best available: finetune, classifier, probe, knn).')
  flags.DEFINE_bool('json', False, 'Print one JSON object per video instead of text.')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest intact one).')
  flags.DEFINE_float('window_s', 0.0, '>0: score sliding windows of this many seconds (long videos).')
  flags.DEFINE_float('stride_s', 0.0, 'Seconds between window starts (default: --window_s / 2).')
  flags.DEFINE_string('out', '.', 'Folder for the timelines of --window_s.')


def format_prediction(prediction) -> str:
  classes = ' | '.join(f'{c} {p:.1%}' for c, p in zip(prediction.classes, prediction.probabilities))
  return f'{prediction.video}: {classes}  [{prediction.head}]'


def classify_files(predictor, paths: Sequence[str], *, top_k: int, head: str | None, as_json: bool,
                   stream=sys.stdout) -> list[tuple[str, Exception]]:
  """Prints each video's prediction as it comes; returns the skipped (name, error) pairs."""
  from scfa_jax.inference import paths as paths_lib  # pylint: disable=g-import-not-at-top
  head = predictor.resolve_head(head)
  skipped = []
  for out in predictor.outputs(paths, predictor.model_of(head)):
    if out.error is not None:
      skipped.append((out.name, out.error))
      continue
    prediction = predictor.predict(out.values, paths_lib.display(out.name), head, top_k)
    print(json.dumps(prediction.to_json()) if as_json else format_prediction(prediction), file=stream, flush=True)
  return skipped


def timelines(predictor, paths: Sequence[str], *, window_s: float, stride_s: float, head: str | None,
              out_dir: str, as_json: bool, stream=sys.stdout) -> list[tuple[str, Exception]]:
  """Writes a timeline per video (distinct names: ``paths.output_names``); returns the skipped ones."""
  from scfa_jax.inference import paths as paths_lib  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import timeline as timeline_lib  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import video as video_lib  # pylint: disable=g-import-not-at-top
  head = predictor.resolve_head(head)
  skipped = []
  for path, name in zip(paths, paths_lib.output_names(paths)):
    try:
      line = timeline_lib.score(predictor, path, window_s=window_s, stride_s=stride_s or window_s / 2, head=head)
    except video_lib.BadVideoError as e:
      skipped.append((path, e))
      continue
    prefix = os.path.join(out_dir, name + '_timeline')
    try:
      written = timeline_lib.write(line, prefix)
    except OSError as e:
      from scfa_jax import errors  # pylint: disable=g-import-not-at-top
      raise errors.BadFilesError(f'{prefix}.*: cannot write the timeline ({e.strerror}); '
                                 'pass a writable --out.') from None
    if as_json:
      print(json.dumps(line.to_json()), file=stream, flush=True)
    else:
      print(f'{line.video}: {len(line.starts)} windows of {window_s:g} s -> {", ".join(written)}', file=stream,
            flush=True)
      for s, e, p in zip(line.starts, line.ends, line.probabilities):
        best = int(p.argmax())
        print(f'  {s:7.2f}-{e:7.2f} s  {line.class_names[best]} {p[best]:.1%}', file=stream)
  return skipped


def main(argv: Sequence[str]) -> None:
  from scfa_jax.inference import cli  # pylint: disable=g-import-not-at-top
  cli.start()

  def body() -> int:
    from scfa_jax import errors  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import paths  # pylint: disable=g-import-not-at-top
    if len(argv) < 2:
      raise errors.ConfigError('Name at least one video file or folder after the flags.')
    listing = paths.list_videos(argv[1:])
    if not listing.videos:
      raise paths.nothing_found(listing)
    predictor = Predictor.from_workdir(FLAGS.workdir, step=FLAGS.step)
    if FLAGS.window_s > 0:
      skipped = timelines(predictor, listing.videos, window_s=FLAGS.window_s, stride_s=FLAGS.stride_s,
                          head=FLAGS.head, out_dir=FLAGS.out, as_json=FLAGS.json)
    else:
      skipped = classify_files(predictor, listing.videos, top_k=FLAGS.top_k, head=FLAGS.head, as_json=FLAGS.json)
    return cli.report_skipped(listing.skipped + skipped, len(listing.videos) + len(listing.skipped))

  cli.run(body)


if __name__ == '__main__':
  from scfa_jax.inference import cli as _cli  # pylint: disable=g-import-not-at-top
  _cli.launch(define_flags, main, __doc__)
