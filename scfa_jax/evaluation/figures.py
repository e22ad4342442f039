"""The run's PNG figures, each drawn on its own after the results are safely on disk.

A figure is a view of numbers that ``results.json`` already holds, so no figure
may cost the numbers: every entry of ``FIGURES`` is drawn independently, and
one that fails (degenerate inputs, a plotting library's bug, a full disk) is
logged with its reason and reported under ``figure_errors`` instead of ending
the run. The data each figure needs travels in one ``FigureInputs`` value.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable, Optional

import numpy as np

from scfa_jax.evaluation import gallery
from scfa_jax.evaluation import metrics
from scfa_jax.evaluation import plots
from scfa_jax.evaluation import robustness
from scfa_jax.evaluation import schema

CURVE_TAGS = ('train/loss', 'train/learning_rate')


@dataclasses.dataclass(frozen=True)
class FigureInputs:
  """Everything the figures are drawn from (host arrays, already scored)."""

  results: dict[str, Any]
  test_features: np.ndarray  # [N, D] single-view encoder features of the test split
  test_labels: np.ndarray  # [N]
  workdir: str
  finetune_dir: Optional[str]  # the fine-tune run's folder (its curves), None without fine-tuning
  pretrain_name: str  # config.loss.name, for the curve titles
  builder: Any = None  # the prepared dataset, to re-read grids for the retrieval gallery
  config: Any = None  # the run's config
  train_features: Optional[np.ndarray] = None  # [M, D] the train split's features (the retrieval memory)
  train_labels: Optional[np.ndarray] = None  # [M]


class FigureSkipped(Exception):
  """There is nothing to draw (e.g. no training events), which is not an error."""


def _confusion_matrix(inputs: FigureInputs, path: str) -> None:
  matrices = {name: np.asarray(entry['single_view']['confusion_matrix'])
              for name, entry in inputs.results['protocols'].items()
              if name in schema.CLASSIFICATION_PROTOCOLS and entry['single_view'] is not None}
  if not matrices:
    raise FigureSkipped('no classification protocol could be scored')
  plots.plot_confusion_matrices(matrices, inputs.results['class_names'], path)


def _embedding_map(inputs: FigureInputs, path: str) -> None:
  coordinates = plots.tsne_2d(inputs.test_features)
  plots.plot_embedding_map(coordinates, inputs.test_labels, inputs.results['class_names'], path,
                           title=f'Test videos: t-SNE of encoder features (step {inputs.results["step"]})')


def _training_curves(inputs: FigureInputs, path: str) -> None:
  runs = {f'pre-training ({inputs.pretrain_name})': plots.read_scalars(inputs.workdir, CURVE_TAGS)}
  if inputs.finetune_dir is not None:
    runs['fine-tuning (cross_entropy)'] = plots.read_scalars(inputs.finetune_dir, CURVE_TAGS)
  runs = {name: curves for name, curves in runs.items() if curves}
  if not runs:  # a workdir without training events (copied checkpoints)
    raise FigureSkipped('the workdir holds no training events')
  plots.plot_training_curves(runs, path)


def _retrieval_examples(inputs: FigureInputs, path: str) -> None:
  if inputs.builder is None or inputs.train_features is None or not len(inputs.train_features):
    raise FigureSkipped('no train split to retrieve from')
  problem = (metrics.non_finite_rows(inputs.train_features, 'train')
             or metrics.non_finite_rows(inputs.test_features, 'test'))
  if problem:
    raise plots.DegenerateInputError(problem)
  gallery.write(inputs.builder, inputs.config, train_features=inputs.train_features,
                train_labels=inputs.train_labels, test_features=inputs.test_features, test_labels=inputs.test_labels,
                out=path)


def _robustness(inputs: FigureInputs, path: str) -> None:
  report = inputs.results.get('robustness')
  if not report:
    raise FigureSkipped('the robustness report is off (config.eval.robustness)')
  rows = [(f'{name} {setting}', scores) for name, setting, scores in robustness.flatten(report)]
  clean = {p: inputs.results.get(f'{p}_top1') for p in ('linear_probe', 'knn')}
  plots.plot_robustness(rows, clean, path)


# name -> (file name, drawing function). Names are the keys of results.json `figures`.
FIGURES: dict[str, tuple[str, Callable[[FigureInputs, str], None]]] = {  # keys: schema.FIGURE_NAMES
    'confusion_matrix': ('confusion_matrix.png', _confusion_matrix),
    'embedding_map': ('embedding_tsne.png', _embedding_map),
    'training_curves': ('training_curves.png', _training_curves),
    'retrieval_examples': (gallery.FILE_NAME, _retrieval_examples),
    'robustness': ('robustness.png', _robustness),
}


def write_figures(inputs: FigureInputs) -> tuple[dict[str, str], dict[str, str]]:
  """Draws every figure into the workdir, each on its own.

  Returns:
    ({figure: file name} of those written, {figure: reason} of those that could not be drawn).
  """
  written, errors = {}, {}
  for name, (file_name, draw) in FIGURES.items():
    path = os.path.join(inputs.workdir, file_name)
    try:
      draw(inputs, path)
    except FigureSkipped as e:
      logging.debug('Figure %s not drawn: %s.', name, e)  # nothing to draw is not news
      continue
    except plots.DegenerateInputError as e:
      logging.warning('Figure %s not drawn: %s.', name, e)
      errors[name] = str(e)
      continue
    except Exception as e:  # pylint: disable=broad-except  (a figure never costs the run; the log keeps the traceback)
      logging.warning('Figure %s failed: %s', name, e, exc_info=True)
      errors[name] = f'{type(e).__name__}: {e}'
      continue
    written[name] = file_name
  return written, errors
