"""The search command's PNG: each query's grid beside its neighbours' grids, captioned with similarity.

Grids are the single evaluation view of each video (what the encoder saw).
Neighbours from an embedding file are read from their files; neighbours from
the train split are read from the prepared dataset (``evaluation.gallery.read_grids``),
or shown blank with a note when that dataset is not on this machine.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from scfa_jax.inference import views as views_lib


def _file_grids(predictor, paths: Sequence[str]) -> dict[str, np.ndarray]:
  single = views_lib.ViewSpec(1, 0)
  return {item.name: item.grids[0] for item in views_lib.items(list(paths), predictor.config, single)
          if item.error is None}


def _train_grids(predictor, rows: Sequence[int]) -> dict[int, np.ndarray]:
  from scfa_jax import datasets  # pylint: disable=g-import-not-at-top
  from scfa_jax.evaluation import gallery  # pylint: disable=g-import-not-at-top
  try:
    builder = datasets.get_builder(predictor.config.data)
    return gallery.read_grids(builder, predictor.config.data.train_split, predictor.config.data, rows)
  except Exception as e:  # pylint: disable=broad-except  (the figure is optional; the text result stands)
    logging.warning('The train split is not readable here (%s): its videos are drawn blank.', e)
    return {}


def _short(name: str, width: int = 26) -> str:
  return name if len(name) <= width else name[:width - 3] + '...'


def write(predictor, results: Sequence[dict], path: str) -> None:
  """Draws ``search.search``'s results (each neighbour carrying its index ``row``) into ``path``."""
  k = max(len(r['neighbours']) for r in results)
  queries = _file_grids(predictor, [r['query'] for r in results])
  files = [n['video'] for r in results for n in r['neighbours'] if os.path.isfile(n['video'])]
  by_file = _file_grids(predictor, list(dict.fromkeys(files)))
  others = sorted({n['row'] for r in results for n in r['neighbours'] if not os.path.isfile(n['video'])})
  by_row = _train_grids(predictor, others) if others else {}
  blank = np.full(next(iter(queries.values())).shape, 255, np.uint8)
  fig = Figure(figsize=(2.2 * (k + 1), 2.6 * len(results)), layout='constrained')
  axes = fig.subplots(len(results), k + 1, squeeze=False)
  for row, result in enumerate(results):
    axes[row, 0].imshow(queries.get(result['query'], blank), interpolation='nearest')
    axes[row, 0].set_title(f'query\n{_short(os.path.basename(result["query"]))}', fontsize=8, fontweight='bold')
    for col, n in enumerate(result['neighbours']):
      grid = by_file.get(n['video'], by_row.get(n['row'], blank))
      axes[row, col + 1].imshow(grid, interpolation='nearest')
      axes[row, col + 1].set_title(f'#{col + 1} {_short(n["label"] or os.path.basename(n["video"]))}\n'
                                   f'similarity {n["similarity"]:.3f}', fontsize=8)
    for ax in axes[row]:
      ax.set_xticks([])
      ax.set_yticks([])
  fig.suptitle(f'Nearest videos by cosine similarity of encoder features ({predictor.workdir})', fontsize=9)
  fig.savefig(path, format='png', dpi=100)
