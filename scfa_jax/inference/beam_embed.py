"""Batch embedding on Apache Beam: video paths -> RunInference over the Predictor -> sharded Parquet.

``Predictor.embed`` on one machine embeds a few videos per second per core;
an archive of millions of videos needs many machines. This pipeline hands the
videos to Beam's ``RunInference`` with ``PredictorHandler`` (a ``ModelHandler``
that loads ``Predictor.from_workdir`` once per worker and runs
``Predictor.outputs`` on each batch, so every number is evaluation's), and
writes the rows as Parquet shards (``inference.parquet_index``) whose metadata
names the model. Videos on object storage are copied to a local temporary file
through Beam's ``FileSystems`` (OpenCV reads local files only). A video that
cannot be read goes to ``errors-<run>.jsonl`` beside the shards and counts in the
Beam counter ``scfa_jax/bad_videos``; it never stops the run. A rerun into the
same folder embeds only the videos its complete shards do not hold.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from typing import Any, Iterable, Iterator, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference import base as inference_base

from scfa_jax import storage
from scfa_jax.inference import parquet_index
from scfa_jax.inference import paths as paths_lib

ENCODER_HEADS = ('classifier', 'probe', 'knn')  # Heads that read the encoder's outputs (no second model pass).


def top_k_head(predictor: Any) -> Optional[str]:
  """The head whose top-k classes the rows carry: the best one of the encoder's, or None."""
  return next((h for h in predictor.available_heads() if h in ENCODER_HEADS), None)


@contextlib.contextmanager
def local_copies(paths: Sequence[str]) -> Iterator[list[str]]:
  """Local paths of ``paths``: local files as they are, object-storage files copied to a temporary folder."""
  folder = None
  local = []
  try:
    for i, path in enumerate(paths):
      if not storage.is_remote(path):
        local.append(path)
        continue
      folder = folder or tempfile.mkdtemp(prefix='scfa_embed_')
      target = os.path.join(folder, f'{i}_{os.path.basename(path)}')
      try:
        with FileSystems.open(path) as src, open(target, 'wb') as dst:
          shutil.copyfileobj(src, dst, 1 << 20)
      except Exception as e:  # pylint: disable=broad-except  # Unreadable object: reported as a bad video.
        logging.warning('Cannot copy %s: %s', path, e)
      local.append(target)  # A failed copy leaves no file: the Predictor reports it as unreadable.
    yield local
  finally:
    if folder:
      shutil.rmtree(folder, ignore_errors=True)


class PredictorHandler(inference_base.ModelHandler[str, dict, Any]):
  """RunInference's view of a trained workdir: video paths in, one row per video out."""

  def __init__(self, workdir: str, *, step: Optional[int] = None, top_k: int = 5, batch_size: int = 16):
    super().__init__(min_batch_size=1, max_batch_size=batch_size)
    self._workdir = workdir
    self._step = step
    self._top_k = top_k

  def load_model(self) -> Any:
    from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
    return Predictor.from_workdir(self._workdir, step=self._step)

  def run_inference(self, batch: Sequence[str], model: Any, inference_args: Optional[dict] = None) -> Iterable[dict]:
    del inference_args
    head = top_k_head(model) if self._top_k else None
    with local_copies(list(batch)) as local:
      outputs = list(model.outputs(local))
    rows = []
    for path, out in zip(batch, sorted(outputs, key=lambda o: o.index)):
      if out.error is not None:
        rows.append({'video': paths_lib.key(path), 'error': str(out.error).replace(local[out.index], path)})
        continue
      row = {'video': paths_lib.key(path), 'label': '', 'embedding': [float(x) for x in out.values['features']]}
      if head:
        prediction = model.predict(out.values, path, head, self._top_k)
        row.update(top_classes=prediction.classes, top_probabilities=prediction.probabilities)
      rows.append(row)
    return rows

  def get_metrics_namespace(self) -> str:
    return 'scfa_jax'


@dataclasses.dataclass(frozen=True)
class Plan:
  """What one run embeds and where: decided on the launching machine, before any worker starts."""

  todo: list[str]
  done: int
  out: str
  run_id: str
  schema: Any
  top_k: bool


def plan(predictor: Any, paths: Sequence[str], out: str, *, top_k: int) -> Plan:
  """Checks the output's model, leaves out the videos it already holds, and fixes the schema."""
  dim = _feature_dim(predictor)
  identity = parquet_index.model_identity(predictor, dim)
  parquet_index.check_identity(out, identity)
  done = parquet_index.finished(out)  # keys (``paths.key``), as the rows store them
  todo = [p for p in paths if paths_lib.key(p) not in done]
  with_top_k = bool(top_k and top_k_head(predictor))
  if with_top_k:
    identity = {**identity, 'top_k_head': top_k_head(predictor)}
  return Plan(todo=todo, done=len(paths) - len(todo), out=out, run_id=time.strftime('%Y%m%d-%H%M%S'),
              schema=parquet_index.schema(dim, identity, top_k=with_top_k), top_k=with_top_k)


def _feature_dim(predictor: Any) -> int:
  """The embedding size: the features of one black frame run through the encoder."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  return int(predictor.embed([np.zeros((1, 8, 8, 3), np.uint8)]).shape[-1])


def expand(pipeline: beam.Pipeline, handler: PredictorHandler, p: Plan) -> None:
  """Adds the embedding to ``pipeline``: rows to ``<out>/part-<run>-*.parquet``, bad videos to ``errors-<run>``."""
  bad = beam.metrics.Metrics.counter('scfa_jax', 'bad_videos')
  good = beam.metrics.Metrics.counter('scfa_jax', 'embedded_videos')

  def route(row: dict) -> Iterator:
    if 'error' in row:
      bad.inc()
      yield beam.pvalue.TaggedOutput('bad', json.dumps(row))
    else:
      good.inc()
      yield {k: row[k] for k in p.schema.names}

  rows = (pipeline
          | 'Videos' >> beam.Create(p.todo)
          | 'Spread' >> beam.Reshuffle()
          | 'Embed' >> inference_base.RunInference(handler)
          | 'Route' >> beam.FlatMap(route).with_outputs('bad', main='rows'))
  _ = rows.rows | 'WriteParquet' >> beam.io.WriteToParquet(
      os.path.join(p.out, f'part-{p.run_id}'), p.schema, file_name_suffix=parquet_index.SUFFIX)
  _ = rows.bad | 'WriteErrors' >> beam.io.WriteToText(os.path.join(p.out, f'errors-{p.run_id}'),
                                                       file_name_suffix='.jsonl', num_shards=1,
                                                       shard_name_template='')


def bad_videos(out: str, run_id: str) -> list[tuple[str, str]]:
  """(video, reason) of the videos this run could not embed."""
  path = os.path.join(out, f'errors-{run_id}.jsonl')
  if not FileSystems.exists(path):
    return []
  with FileSystems.open(path) as f:
    rows = [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]
  return sorted((r['video'], r['error']) for r in rows)


def run(predictor: Any, workdir: str, paths: Sequence[str], out: str, *, options: Any, step: Optional[int] = None,
        top_k: int = 5, batch_size: int = 16) -> tuple[Plan, list[tuple[str, str]]]:
  """Embeds ``paths`` into ``out`` on the runner of ``options``; returns the plan and the bad videos."""
  p = plan(predictor, paths, out, top_k=top_k)
  if p.done:
    logging.info('%s already holds %d of these %d videos; embedding the other %d.', out, p.done, len(paths),
                 len(p.todo))
  if not p.todo:
    return p, []
  if not FileSystems.exists(out):
    FileSystems.mkdirs(out)
  handler = PredictorHandler(workdir, step=step, top_k=top_k if p.top_k else 0, batch_size=batch_size)
  with beam.Pipeline(options=options) as pipeline:
    expand(pipeline, handler, p)
  return p, bad_videos(out, p.run_id)
