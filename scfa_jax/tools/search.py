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
import sys
from typing import Optional, Sequence

from absl import app
from absl import flags

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
  from scfa_jax.inference import parquet_index  # pylint: disable=g-import-not-at-top
  if path:
    return parquet_index.load_any(path)  # CSV, or Parquet (a .parquet file or a folder of them)
  if predictor.heads is None or predictor.heads.memory is None:
    predictor.resolve_head('knn')  # raises the message naming --mode=eval
    raise heads_lib.NoHeadsError(f'{predictor.workdir} has no saved train-split memory; pass --index.')
  memory = predictor.heads.memory
  return index.from_memory(memory.clip_ids, memory.labels, memory.features, predictor.class_names)


def search(predictor, queries: Sequence[str], found, *, k: int, method: str = 'exact',
           cache_path: Optional[str] = None) -> list[dict]:
  """[{query, neighbours: [{video, label, similarity, row (in the index)}]}] per query; unreadable queries raise."""
  from scfa_jax.inference import ann  # pylint: disable=g-import-not-at-top
  features = predictor.embed(list(queries))
  if features.shape[1] != found.features.shape[1]:
    from scfa_jax import errors  # pylint: disable=g-import-not-at-top
    raise errors.BadFilesError(f'The index holds {found.features.shape[1]}-dimensional embeddings, this model gives '
                               f'{features.shape[1]}: embed the index with this --workdir.')
  ids, sims = ann.nearest(found.features, features, k=k, method=method, names=found.names,
                          cache_path=ann.cache_prefix(cache_path))
  return [{'query': q, 'neighbours': [{'video': found.names[i], 'label': found.labels[i], 'similarity': float(s),
                                       'row': int(i)}
                                      for i, s in zip(row_ids, row_sims)]}
          for q, row_ids, row_sims in zip(queries, ids, sims)]


def print_results(results: Sequence[dict], *, as_json: bool, stream=sys.stdout) -> None:
  for result in results:
    if as_json:
      print(json.dumps(result), file=stream)
      continue
    print(f'{result["query"]}:', file=stream)
    for rank, n in enumerate(result['neighbours'], 1):
      print(f'  {rank}. {n["similarity"]:.4f}  {n["video"]}' + (f'  ({n["label"]})' if n['label'] else ''), file=stream)


def main(argv: Sequence[str]) -> None:
  from scfa_jax.inference import cli  # pylint: disable=g-import-not-at-top
  cli.start()

  def body() -> int:
    from scfa_jax import errors  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
    from scfa_jax.inference import video as video_lib  # pylint: disable=g-import-not-at-top
    if len(argv) > 1:
      raise errors.ConfigError(f'Unexpected arguments {argv[1:]}: pass the query with --query.')
    queries = video_lib.find_videos(FLAGS.query)
    predictor = Predictor.from_workdir(FLAGS.workdir, step=FLAGS.step)
    found = load_index(predictor, FLAGS.index)
    results = search(predictor, queries, found, k=FLAGS.k, method=FLAGS.search, cache_path=FLAGS.index)
    print_results(results, as_json=FLAGS.json)
    if FLAGS.png:
      from scfa_jax.inference import gallery  # pylint: disable=g-import-not-at-top
      gallery.write(predictor, results, FLAGS.png)
      print(f'Wrote {FLAGS.png}.')
    return 0

  cli.run(body)


if __name__ == '__main__':
  define_flags()
  app.run(main)
