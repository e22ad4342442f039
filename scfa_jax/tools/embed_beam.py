r"""Embeds many videos on Apache Beam into sharded Parquet files (the ``beam`` extra).

  python -m scfa_jax.tools.embed_beam --workdir=/tmp/scfa_demo --videos='clips/*.mp4' --out=/tmp/emb/
  python -m scfa_jax.tools.embed_beam --workdir=gs://b/run --videos='gs://b/videos/*.mp4' --out=gs://b/emb/ \
      --runner=DataflowRunner --beam_pipeline_options="project=P,region=R,temp_location=gs://b/tmp"

``--videos``: folders (searched recursively), files, ``.txt`` lists (local), or
glob patterns on any file system Beam knows (``gs://``, ``s3://``, local).
``--out`` is a folder of ``part-<run>-NNNNN-of-NNNNN.parquet`` files (columns
``video``, ``label``, ``embedding`` and, with a classification head,
``top_classes``/``top_probabilities``; the model's identity in the metadata). A
rerun embeds only the videos not yet there. Unreadable videos are listed (and
kept in ``errors-<run>.jsonl``); the exit status is then 1. ``search --index=<out>``
reads the folder. docs/scale.md has the Dataflow, Flink and Spark options.
"""

from __future__ import annotations

import os
from typing import Sequence

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string('workdir', None, 'A trained workdir (readable by every worker).', required=True)
  flags.DEFINE_list('videos', None, 'Folders, videos, .txt lists, or glob patterns (gs://b/*.mp4).', required=True)
  flags.DEFINE_string('out', None, 'Folder of Parquet shards to write (added to when it exists).', required=True)
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest intact one).')
  flags.DEFINE_integer('top_k', 5, 'Classes per video when the workdir has a head (0 = none).')
  flags.DEFINE_integer('batch_size', 16, 'Videos per RunInference batch.')
  flags.DEFINE_string('runner', 'DirectRunner', 'Beam runner: DirectRunner, DataflowRunner, FlinkRunner, SparkRunner.')
  flags.DEFINE_string('beam_pipeline_options', '', 'More comma-separated Beam options, e.g. '
                      '"direct_num_workers=2" or "project=P,region=R,temp_location=gs://b/tmp".')


def find_videos(entries: Sequence[str]) -> list[str]:
  """The videos of ``--videos``: local entries as ``embed`` reads them, patterns through Beam's file systems."""
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
  from scfa_jax import storage  # pylint: disable=g-import-not-at-top
  from scfa_jax.datasets import video_io  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import video as video_lib  # pylint: disable=g-import-not-at-top
  from scfa_jax.tools import embed  # pylint: disable=g-import-not-at-top
  local = [e for e in entries if not storage.is_remote(e) and not any(c in e for c in '*?[')]
  found = embed.expand(local) if local else []
  for pattern in (e for e in entries if e not in local):
    matched = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list if video_io.is_video_file(m.path))
    if not matched:
      raise video_lib.NoVideosError(f'{pattern}: matches no video file; check the pattern (e.g. gs://b/clips/*.mp4).')
    found.extend(matched)
  return list(dict.fromkeys(found))


def main(argv: Sequence[str]) -> None:
  from scfa_jax.inference import cli  # pylint: disable=g-import-not-at-top
  cli.start()

  def body() -> int:
    from scfa_jax import datasets  # pylint: disable=g-import-not-at-top
    from scfa_jax import errors  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import beam_embed  # pylint: disable=g-import-not-at-top
    if len(argv) > 1:
      raise errors.ConfigError(f'Unexpected arguments {argv[1:]}: pass the videos with --videos.')
    paths = find_videos(FLAGS.videos)
    options = datasets.beam_options(','.join(filter(None, [f'runner={FLAGS.runner}', FLAGS.beam_pipeline_options])))
    predictor = Predictor.from_workdir(FLAGS.workdir, step=FLAGS.step)
    plan, bad = beam_embed.run(predictor, FLAGS.workdir, paths, FLAGS.out, options=options, step=FLAGS.step,
                               top_k=FLAGS.top_k, batch_size=FLAGS.batch_size)
    print(f'{FLAGS.out}: {len(plan.todo) - len(bad)} video(s) embedded now, {plan.done} already there, '
          f'{len(bad)} unreadable' + (f' (listed in {os.path.join(FLAGS.out, f"errors-{plan.run_id}.jsonl")})'
                                      if bad else '') + '.')
    return cli.report_skipped(bad, len(paths))

  cli.run(body)


if __name__ == '__main__':
  define_flags()
  app.run(main)
