r"""The videos most similar to a query clip: of the training split, or of any embedded folder.

  python -m scfa_jax.tools.search --workdir=/tmp/scfa_demo --query=clip.mp4 [--k=5]
  python -m scfa_jax.tools.search --workdir=W --query=clip.mp4 --index=my_clips.csv --png=neighbours.png

Without ``--index`` the memory is the train split that evaluation embedded
(``<workdir>/heads/knn_memory.npz``); ``--index`` takes a file of
``python -m scfa_jax.tools.embed`` (CSV, or Parquet: a ``.parquet`` file or the
folder ``embed_beam`` writes). Similarities are cosine similarities of encoder
features; the search is exact, over the index in chunks, up to
``inference.ann.EXACT_BELOW`` rows, and approximate (FAISS) above
(``--search=exact|faiss`` forces one; docs/scale.md).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Optional, Sequence

from absl import flags
import numpy as np

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string('workdir', None, 'A trained (and evaluated) workdir.', required=True)
  flags.DEFINE_list('query', None, 'Query video file(s).', required=True)
  flags.DEFINE_string('index', None, 'Embedding file to search (default: the train split).')
  flags.DEFINE_integer('k', 5, 'Neighbours per query.')
  flags.DEFINE_string('png', None, 'Also draw the query and its neighbours (as grids) into this PNG.')
  flags.DEFINE_bool('json', False, 'Print one JSON object per query instead of text.')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest intact one).')
  flags.DEFINE_enum('search', 'auto', ['auto', 'exact', 'faiss'], 'exact, approximate (FAISS, the ann extra; its '
                    'index is saved beside --index), or auto: FAISS from inference.ann.EXACT_BELOW rows.')


def load_index(predictor, path: Optional[str]):
  """The embedding file at ``path``, or the workdir's train-split memory."""
  from scfa_jax.evaluation import heads as heads_lib  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import index  # pylint: disable=g-import-not-at-top
  if path:
    from scfa_jax.inference import identity  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import parquet_index  # pylint: disable=g-import-not-at-top
    if parquet_index.is_parquet(path):  # a .parquet file or a folder of them (embed_beam's output): check first
      found, recorded = None, parquet_index.identity_of(path)
      written = None if recorded is None else identity.Identity.from_json(recorded)
    else:
      found = index.load(path)
      written = found.identity  # None for a file of the first format: only its dimension is checked
    if written is not None:
      identity.check(path, written, identity.of_predictor(predictor), fix=(
          f'search it with --workdir={written.workdir} --step={written.step}, or embed the videos '
          'again with this model into another file.'))
    return parquet_index.load(path) if found is None else found
  if predictor.heads is None or predictor.heads.memory is None:
    predictor.resolve_head('knn')  # raises the message naming --mode=eval
    raise heads_lib.NoHeadsError(f'{predictor.workdir} has no saved train-split memory; pass --index.')
  memory = predictor.heads.memory
  return index.from_memory(memory.clip_ids, memory.labels, memory.features, predictor.class_names)


def search(predictor, queries: Sequence[str], found, *, k: int, skipped: Optional[list] = None,
           method: str = 'auto', cache_path: Optional[str] = None) -> list[dict]:
  """[{query, neighbours: [{video, label, similarity, row (in the index)}]}] per readable query.

  A query that cannot be read is appended to ``skipped`` as (name, error) and
  the others are answered; without ``skipped`` it raises.
  """
  from scfa_jax.inference import ann  # pylint: disable=g-import-not-at-top
  answered, vectors = [], []
  for out in predictor.outputs(list(queries)):
    if out.error is None:
      answered.append(queries[out.index])
      vectors.append(out.values['features'])
    elif skipped is None:
      raise out.error
    else:
      skipped.append((out.name, out.error))
  if not answered:
    return []
  features = np.stack(vectors)
  if features.shape[1] != found.features.shape[1]:
    from scfa_jax import errors  # pylint: disable=g-import-not-at-top
    raise errors.BadFilesError(f'The index holds {found.features.shape[1]}-dimensional embeddings, this model gives '
                               f'{features.shape[1]}: embed the index with this --workdir.')
  ids, sims = ann.nearest(found.features, features, k=k, method=method, names=found.names,
                          cache_path=ann.cache_prefix(cache_path))
  return [{'query': q, 'neighbours': [{'video': found.names[i], 'label': found.labels[i], 'similarity': float(s),
                                       'row': int(i)}
                                      for i, s in zip(row_ids, row_sims)]}
          for q, row_ids, row_sims in zip(answered, ids, sims)]


def print_results(results: Sequence[dict], *, as_json: bool, stream=sys.stdout) -> None:
  from scfa_jax.inference import paths  # pylint: disable=g-import-not-at-top
  for result in results:
    result = {**result, 'query': paths.display(result['query'])}
    if as_json:
      print(json.dumps(result), file=stream)
      continue
    print(f'{result["query"]}:', file=stream)
    for rank, n in enumerate(result['neighbours'], 1):
      print(f'  {rank}. {n["similarity"]:.4f}  {n["video"]}' + (f'  ({n["label"]})' if n['label'] else ''), file=stream)


def main(argv: Sequence[str]) -> None:
  from scfa_jax.inference import cli  # pylint: disable=g-import-not-at-top

  def body() -> int:
    from scfa_jax import errors  # pylint: disable=g-import-not-at-top
    if len(argv) > 1:
      raise errors.ConfigError(f'Unexpected arguments {argv[1:]}: pass the query with --query.')
    if FLAGS.k < 1:
      raise errors.ConfigError(f'--k={FLAGS.k}: the number of neighbours per query must be at least 1.')
    cli.start()
    from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import paths  # pylint: disable=g-import-not-at-top
    listing = paths.list_videos(FLAGS.query)
    if not listing.videos:
      raise paths.nothing_found(listing)
    predictor = Predictor.from_workdir(FLAGS.workdir, step=FLAGS.step)
    found = load_index(predictor, FLAGS.index)
    skipped = list(listing.skipped)
    results = search(predictor, listing.videos, found, k=FLAGS.k, skipped=skipped, method=FLAGS.search,
                     cache_path=FLAGS.index)
    print_results(results, as_json=FLAGS.json)
    if FLAGS.png and results:
      from scfa_jax.inference import gallery  # pylint: disable=g-import-not-at-top
      gallery.write(predictor, results, FLAGS.png)
      logging.info('Wrote %s.', FLAGS.png)  # stderr: --json keeps stdout to JSON lines
    return cli.report_skipped(skipped, len(listing.videos) + len(listing.skipped))

  cli.run(body)


if __name__ == '__main__':
  from scfa_jax.inference import cli as _cli  # pylint: disable=g-import-not-at-top
  _cli.launch(define_flags, main, __doc__)
