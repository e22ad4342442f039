r"""One embedding per video of a folder (recursive) or a list, into a CSV (or Parquet) file that resumes.

  python -m scfa_jax.tools.embed --workdir=/tmp/scfa_demo --videos=my_clips/ --out=my_clips.csv

``--videos`` is a folder, a video, a comma-separated list of them, or a text
file (``.txt``) with one per line. Videos already in ``--out`` are not embedded
again (matched by their resolved path, however spelled), so an interrupted run
continues where it stopped; rows are saved one video at a time. The file
records the model that wrote it and refuses another model's rows. Read it with
``scfa_jax.inference.index.read_embeddings(out)`` (docs/inference.md, "embed").
An ``--out`` ending in ``.parquet`` (or a folder) writes Parquet instead
(``inference.parquet_index``: the same model identity, in its metadata; what
is embedded is committed as a complete part file every 10 s and merged when the
run ends).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Optional, Sequence

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string('workdir', None, 'A trained workdir.', required=True)
  flags.DEFINE_list('videos', None, 'Folder(s), video(s), or a .txt file listing them.', required=True)
  flags.DEFINE_string('out', None, 'The CSV file to write (appended to when it exists), or a .parquet file or '
                      'folder.', required=True)
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest intact one).')


def fix_for(out: str, written) -> str:
  """How to resolve an ``--out`` written by another model."""
  if written is None:
    return f'pass a new --out (search still reads {out}).'
  return f'pass a new --out, or --workdir={written.workdir} --step={written.step} to extend it.'


def remaining(paths: Sequence[str], out: str) -> list[str]:
  """The videos of ``paths`` not yet in the embedding file ``out`` (by ``paths.key``)."""
  from scfa_jax.inference import parquet_index  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import paths as paths_lib  # pylint: disable=g-import-not-at-top
  done = parquet_index.finished_in(out)
  return [p for p in paths if paths_lib.key(p) not in done]


def check_out(out: str, wanted) -> None:
  """Refuses, before any work, an ``--out`` that is not an embedding file or is another model's."""
  from scfa_jax.inference import identity  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import index  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import parquet_index  # pylint: disable=g-import-not-at-top
  if parquet_index.is_parquet(out):
    parquet_index.check_identity(out, wanted.to_json())
  elif os.path.isfile(out) and os.path.getsize(out) > 0:
    written = index.read_identity(out)
    identity.check(out, written, wanted, fix=fix_for(out, written))


def embed_to_file(predictor, paths: Sequence[str], out: str) -> tuple[int, list]:
  """Embeds the videos not yet in ``out`` and appends them, one row per video as each is done.

  Returns:
    (videos embedded now, skipped (name, error) pairs).
  """
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import identity  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import index  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import parquet_index  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import paths as paths_lib  # pylint: disable=g-import-not-at-top
  wanted = identity.of_predictor(predictor)
  check_out(out, wanted)
  todo = remaining(paths, out)
  if len(todo) < len(paths):
    logging.info('%s already holds %d of these %d videos; embedding the other %d.', out, len(paths) - len(todo),
                 len(paths), len(todo))
  writer = None  # index.Writer (CSV) or parquet_index.Writer: the same write(name, label, vector)
  skipped, count, start = [], 0, time.perf_counter()
  try:
    with tqdm(total=len(todo), unit='video', dynamic_ncols=True) as bar:
      for o in predictor.outputs(todo):
        if o.error is not None:
          skipped.append((o.name, o.error))
        else:
          vector = o.values['features']
          if writer is None and parquet_index.is_parquet(out):
            writer = parquet_index.Writer(out, len(vector), identity.of_predictor(predictor, dim=len(vector)).to_json())
          elif writer is None:
            written = index.read_identity(out) if os.path.isfile(out) and os.path.getsize(out) else None
            writer = index.Writer(out, identity.of_predictor(predictor, dim=len(vector)), fix=fix_for(out, written))
          writer.write(paths_lib.key(o.name), '', vector)
          count += 1
        bar.update(1)
        bar.set_postfix_str(f'{count / max(time.perf_counter() - start, 1e-9):.1f} videos/s', refresh=False)
  finally:
    if writer is not None:
      writer.close()
  logging.info('Embedded %d video(s) in %.1f s into %s.', count, time.perf_counter() - start, out)
  return count, skipped


def embed_command(workdir: str, entries: Sequence[str], out: str, *, step: Optional[int] = None,
                  load: Optional[Callable[..., Any]] = None) -> int:
  """What ``python -m scfa_jax.tools.embed`` does; returns its exit code.

  Everything that can be checked without the model is checked first: the
  listing, ``--out`` (writable, an embedding file, of this model) and what is
  left to do; the model (``load``, default ``Predictor.from_workdir``) loads
  only when some video is left.
  """
  from scfa_jax.inference import cli  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import identity  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import paths  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  listing = paths.list_videos(paths.expand(entries))
  total = len(listing.videos) + len(listing.skipped)
  if not listing.videos:
    raise paths.nothing_found(listing)
  _check_writable(out)
  config = workdir_lib.load_config(workdir)
  newest = step if step is not None else workdir_lib.newest_step(workdir)
  if newest is not None:  # without a checkpoint, loading the model says so
    check_out(out, identity.of_model(workdir, config, newest))
  todo = remaining(listing.videos, out)
  if not todo and newest is not None:  # (without a checkpoint, loading below names the problem)
    logging.info('%s already holds all %d video(s); nothing to embed.', out, len(listing.videos))
    return cli.report_skipped(listing.skipped, total)
  if load is None:
    from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
    load = Predictor.from_workdir
  _, skipped = embed_to_file(load(workdir, step=step), todo, out)
  return cli.report_skipped(listing.skipped + skipped, total)


def main(argv: Sequence[str]) -> None:
  from scfa_jax.inference import cli  # pylint: disable=g-import-not-at-top
  cli.start()

  def body() -> int:
    from scfa_jax import errors  # pylint: disable=g-import-not-at-top
    if len(argv) > 1:
      raise errors.ConfigError(f'Unexpected arguments {argv[1:]}: pass the videos with --videos.')
    return embed_command(FLAGS.workdir, FLAGS.videos, FLAGS.out, step=FLAGS.step)

  cli.run(body)


def _check_writable(path: str) -> None:
  """Fails before the model loads when ``--out`` cannot be written."""
  from scfa_jax import errors  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import parquet_index  # pylint: disable=g-import-not-at-top
  directory = os.path.dirname(os.path.abspath(path)) or '.'
  if (os.path.isdir(path) and not parquet_index.is_parquet(path)) or (os.path.exists(path) and not os.access(path, os.W_OK)) or (
      os.path.isdir(directory) and not os.access(directory, os.W_OK)):
    raise errors.BadFilesError(f'{path}: cannot write the embeddings there; pass a writable --out file.')


if __name__ == '__main__':
  from scfa_jax.inference import cli as _cli  # pylint: disable=g-import-not-at-top
  _cli.launch(define_flags, main, __doc__)
