r"""One embedding per video of a folder (recursive) or a list, into a CSV (or Parquet) file that resumes.

  python -m scfa_jax.tools.embed --workdir=/tmp/scfa_demo --videos=my_clips/ --out=my_clips.csv

``--videos`` is a folder, a video, a comma-separated list of them, or a text
file (``.txt``) with one per line. Videos already in ``--out`` are not embedded
again, so an interrupted run continues where it stopped. Read the file with
``pandas.read_csv(out, index_col='video')`` (columns: label, e0 ... e{D-1}).
An ``--out`` ending in ``.parquet`` (or a folder) writes Parquet instead
(``inference.parquet_index``: the model's identity in its metadata).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from typing import Sequence

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string('workdir', None, 'A trained workdir.', required=True)
  flags.DEFINE_list('videos', None, 'Folder(s), video(s), or a .txt file listing them.', required=True)
  flags.DEFINE_string('out', None, 'The CSV file to write (appended to when it exists).', required=True)
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest intact one).')


def expand(entries: Sequence[str]) -> list[str]:
  """Video files of ``--videos``: folders searched recursively, ``.txt`` files read as lists."""
  from scfa_jax.inference import video as video_lib  # pylint: disable=g-import-not-at-top
  listed = []
  for entry in entries:
    listed.extend(video_lib.read_list(entry) if entry.endswith('.txt') and os.path.isfile(entry) else [entry])
  return video_lib.find_videos(listed)


def embed_to_file(predictor, paths: Sequence[str], out: str, *, chunk: int = 64) -> tuple[int, list]:
  """Embeds the videos not yet in ``out`` and appends them; returns (videos embedded now, skipped pairs)."""
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import parquet_index  # pylint: disable=g-import-not-at-top
  done = parquet_index.finished_in(out)  # CSV, or Parquet for a .parquet file or a folder
  todo = [p for p in paths if p not in done]
  if done:
    logging.info('%s already holds %d of these %d videos; embedding the other %d.', out, len(paths) - len(todo),
                 len(paths), len(todo))
  writer, skipped, count = None, [], 0
  start = time.perf_counter()
  with tqdm(total=len(todo), unit='video', dynamic_ncols=True) as bar:
    outputs = predictor.outputs(todo)
    while True:
      group = list(itertools.islice(outputs, chunk))
      if not group:
        break
      rows = []
      for o in group:
        if o.error is not None:
          skipped.append((o.name, o.error))
        else:
          rows.append((o.name, '', o.values['features']))
      if rows:
        if writer is None:
          writer = parquet_index.writer_for(out, len(rows[0][2]), predictor)
        writer.write(rows)
        count += len(rows)
      bar.update(len(group))
      bar.set_postfix_str(f'{count / max(time.perf_counter() - start, 1e-9):.1f} videos/s')
  if writer is not None:
    writer.close()
  logging.info('Embedded %d video(s) in %.1f s into %s.', count, time.perf_counter() - start, out)
  return count, skipped


def main(argv: Sequence[str]) -> None:
  from scfa_jax.inference import cli  # pylint: disable=g-import-not-at-top
  cli.start()

  def body() -> int:
    from scfa_jax import errors  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
    if len(argv) > 1:
      raise errors.ConfigError(f'Unexpected arguments {argv[1:]}: pass the videos with --videos.')
    paths = expand(FLAGS.videos)
    _check_writable(FLAGS.out)
    predictor = Predictor.from_workdir(FLAGS.workdir, step=FLAGS.step)
    _, skipped = embed_to_file(predictor, paths, FLAGS.out)
    return cli.report_skipped(skipped, len(paths))

  cli.run(body)


def _check_writable(path: str) -> None:
  """Fails before the model loads when ``--out`` cannot be written."""
  from scfa_jax import errors  # pylint: disable=g-import-not-at-top
  directory = os.path.dirname(os.path.abspath(path)) or '.'
  if (os.path.exists(path) and not os.access(path, os.W_OK)) or (  # (a folder: Parquet shards)
      os.path.isdir(directory) and not os.access(directory, os.W_OK)):
    raise errors.BadFilesError(f'{path}: cannot write the embeddings there; pass a writable --out file.')


if __name__ == '__main__':
  define_flags()
  app.run(main)
