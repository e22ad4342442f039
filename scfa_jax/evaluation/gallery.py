"""Retrieval gallery: test videos beside their most similar train videos, as grids the network saw.

A figure makes retrieval concrete where Recall@k and mAP cannot: which train
videos a query lands next to, of which class, how similar. The run writes one
(``retrieval_examples.png``) and ``evaluation.explore`` draws the same figure
for any test video of a finished workdir.
"""

from __future__ import annotations

from typing import BinaryIO, Sequence, Union

import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from matplotlib.figure import Figure

from scfa_jax.data import input_pipeline
from scfa_jax.data import release
from scfa_jax.evaluation import knn

FILE_NAME = 'retrieval_examples.png'


def nearest(memory: np.ndarray, queries: np.ndarray, *, k: int) -> tuple[np.ndarray, np.ndarray]:
  """(indices [Q, k], cosine similarities [Q, k]) of each query's k most similar memory items, best first."""
  sims = knn.l2_normalize(queries) @ knn.l2_normalize(memory).T
  order = np.argsort(-sims, axis=1, kind='stable')[:, :min(k, sims.shape[1])]
  return order, np.take_along_axis(sims, order, axis=1)


def choose_queries(test_labels: np.ndarray, num_queries: int) -> list[int]:
  """The first test video of ``num_queries`` classes spread evenly over the label range (deterministic)."""
  classes = np.unique(test_labels)
  picked = classes[np.linspace(0, len(classes) - 1, min(num_queries, len(classes))).round().astype(int)]
  return [int(np.flatnonzero(test_labels == c)[0]) for c in dict.fromkeys(picked.tolist())]


def read_grids(builder: tfds.core.DatasetBuilder, split: str, data_config: ml_collections.ConfigDict,
               indices: Sequence[int], *, batch_size: int = 64) -> dict[int, np.ndarray]:
  """The evaluation grids (uint8 [H, W, 3]) of the videos at ``indices``, in the order ``embeddings.extract`` uses.

  That order is each host's part of the split in turn, so the parts are read
  one after another here; reading stops once every wanted video is found.
  """
  wanted, found, offset = set(int(i) for i in indices), {}, 0
  for part in range(jax.process_count()):
    dataset, _ = input_pipeline.create_eval_dataset(builder, split, data_config, local_batch_size=batch_size,
                                                    process_index=part, num_processes=jax.process_count())
    for batch in release.numpy_batches(dataset):
      images = batch['image'][batch['mask']]
      if images.ndim == 5:  # fused samples [P, H, W, 3]: the gallery shows the global grid
        images = images[:, 0]
      found.update({offset + i: images[i] for i in range(len(images)) if offset + i in wanted})
      offset += len(images)
      if len(found) == len(wanted):
        return found
  missing = sorted(wanted - set(found))
  raise IndexError(f'Split {split!r} has {offset} videos; asked for index {missing[0]}.')


def draw(query_grids: np.ndarray, query_labels: Sequence[int], neighbour_grids: np.ndarray,
         neighbour_labels: np.ndarray, similarities: np.ndarray, class_names: Sequence[str],
         out: Union[str, BinaryIO], *, title: str = '') -> None:
  """Saves one row per query: its grid, then its neighbours' grids with class and cosine similarity.

  A neighbour's caption is green when it has the query's class, red otherwise.
  """
  num_queries, k = neighbour_labels.shape
  height, width = query_grids.shape[1:3]
  side = max(1.6, min(3.0, width / 60.0))
  fig = Figure(figsize=((k + 1) * side + 0.4, num_queries * (side * height / width + 0.6) + 0.6), layout='constrained')
  axes = fig.subplots(num_queries, k + 1, squeeze=False)
  for row in range(num_queries):
    query_class = int(query_labels[row])
    axes[row, 0].imshow(query_grids[row], interpolation='nearest')
    axes[row, 0].set_title(f'query (test)\n{class_names[query_class]}', fontsize=8, fontweight='bold')
    for col in range(k):
      label = int(neighbour_labels[row, col])
      ax = axes[row, col + 1]
      ax.imshow(neighbour_grids[row, col], interpolation='nearest')
      ax.set_title(f'#{col + 1} {class_names[label]}\nsimilarity {similarities[row, col]:.3f}', fontsize=8,
                   color='tab:green' if label == query_class else 'tab:red')
    for ax in axes[row]:
      ax.set_xticks([])
      ax.set_yticks([])
  fig.suptitle(title or f'Retrieval: each test video (left) and its {k} most similar train videos', fontsize=9)
  fig.savefig(out, format='png', dpi=100)


def write(builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict, *, train_features: np.ndarray,
          train_labels: np.ndarray, test_features: np.ndarray, test_labels: np.ndarray,
          out: Union[str, BinaryIO], queries: Sequence[int] = (), num_queries: int = 4, k: int = 5) -> list[int]:
  """Draws the gallery of ``queries`` (default: ``choose_queries``) from single-view features; returns the queries."""
  queries = list(queries) or choose_queries(np.asarray(test_labels), num_queries)
  neighbours, sims = nearest(train_features, np.asarray(test_features)[queries], k=k)
  test_grids = read_grids(builder, config.data.test_split, config.data, queries)
  train_grids = read_grids(builder, config.data.train_split, config.data, neighbours.ravel())
  class_names = list(builder.info.features['label'].names)
  draw(np.stack([test_grids[q] for q in queries]), [int(test_labels[q]) for q in queries],
       np.stack([[train_grids[int(n)] for n in row] for row in neighbours]), np.asarray(train_labels)[neighbours],
       sims, class_names, out)
  return queries
