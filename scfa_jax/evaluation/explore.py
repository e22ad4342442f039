"""Looking into a finished workdir: the figures and tables of ``colab/explore.ipynb``, one function each.

Every function returns an object a notebook displays inline (``PNG`` or
``Table``) and draws with the same code as the run itself (``tools.show_grids``,
``evaluation.plots``, ``evaluation.gallery``), so the notebook and the command
line show the same things. Figures that need embeddings (the embedding map,
retrieval) restore the workdir's latest checkpoint once, in :func:`embed`.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import io
import json
import os
from typing import Any, Optional, Sequence

import ml_collections
import numpy as np

from scfa_jax.evaluation import figures
from scfa_jax.evaluation import finetune as finetune_lib
from scfa_jax.evaluation import gallery
from scfa_jax.evaluation import plots
from scfa_jax.evaluation import report
from scfa_jax.evaluation import schema
from scfa_jax.tools import show_grids
from scfa_jax.training import init_from
from scfa_jax.training import workdir_config


class PNG:
  """A PNG image that notebooks display inline (``_repr_png_``) and that can be saved."""

  def __init__(self, data: bytes):
    self.data = data

  def _repr_png_(self) -> bytes:
    return self.data

  def save(self, path: str) -> None:
    with open(path, 'wb') as f:
      f.write(self.data)


def _png(draw) -> PNG:
  """Runs ``draw(file)`` (any of the package's savefig-based drawers) into memory."""
  buffer = io.BytesIO()
  draw(buffer)
  return PNG(buffer.getvalue())


@dataclasses.dataclass(frozen=True)
class Table:
  """A small table: shown as HTML in a notebook, as aligned text by ``str``."""

  columns: list[str]
  rows: list[list[Any]]

  @staticmethod
  def _cell(value: Any) -> str:
    if value is None:
      return '-'
    return f'{value:.1%}' if isinstance(value, float) else str(value)

  def _repr_html_(self) -> str:
    head = ''.join(f'<th>{html.escape(c)}</th>' for c in self.columns)
    body = ''.join('<tr>' + ''.join(f'<td>{html.escape(self._cell(v))}</td>' for v in row) + '</tr>'
                   for row in self.rows)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

  def __str__(self) -> str:
    cells = [self.columns] + [[self._cell(v) for v in row] for row in self.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(r, widths)) for r in cells)


@dataclasses.dataclass(frozen=True)
class Run:
  """A finished workdir: its config and its results.json."""

  workdir: str
  config: ml_collections.ConfigDict
  results: dict[str, Any]

  @property
  def class_names(self) -> list[str]:
    return list(self.results['class_names'])


@dataclasses.dataclass(frozen=True)
class Embeddings:
  """Single-view encoder features of both splits, in dataset order."""

  train_features: np.ndarray
  train_labels: np.ndarray
  test_features: np.ndarray
  test_labels: np.ndarray


def load(workdir: str, config: Optional[ml_collections.ConfigDict] = None) -> Run:
  """Opens a finished workdir; ``config`` is needed only when the workdir has no ``config.json``.

  Raises:
    FileNotFoundError: no results.json (the run has not finished its evaluation), or neither a
      config.json nor a ``config`` argument.
  """
  results_path = os.path.join(workdir, report.RESULTS_FILE)
  if not os.path.isfile(results_path):
    raise FileNotFoundError(f'{results_path} not found: open the workdir of a run that finished its evaluation '
                            '(or run --mode=eval on it first).')
  with open(results_path) as f:
    results = json.load(f)
  schema.validate(results)
  config_path = os.path.join(workdir, workdir_config.CONFIG_FILE)
  if os.path.isfile(config_path):
    with open(config_path) as f:
      config = ml_collections.ConfigDict(json.load(f))
  elif config is None:
    raise FileNotFoundError(f'{config_path} not found: pass the config the run was trained with, '
                            'explore.load(workdir, config).')
  return Run(workdir=workdir, config=config, results=results)


def training_views(run: Run, *, num_videos: int = 4, batch_index: int = 0) -> PNG:
  """Both training views of ``num_videos`` videos as grids: what the network saw (``tools.show_grids``)."""
  mode = init_from.preprocessing(run.config)
  batch = show_grids.training_batch(run.config, num_videos=num_videos, batch_index=batch_index)
  return _png(functools.partial(show_grids.plot_grids, batch['views'], batch['label'], batch['class_names'],
                                show_grids.describe(run.config, mode)))


def training_curves(run: Run) -> PNG:
  """Loss and learning rate against step, for pre-training and (when run) fine-tuning."""
  runs = {f'pre-training ({run.config.loss.name})': plots.read_scalars(run.workdir, figures.CURVE_TAGS)}
  if run.results['settings']['finetune_steps']:
    finetune_dir = finetune_lib.run_dir(run.workdir, run.results['step'], run.config)
    runs['fine-tuning (cross_entropy)'] = plots.read_scalars(finetune_dir, figures.CURVE_TAGS)
  runs = {name: curves for name, curves in runs.items() if curves}
  if not runs:
    raise FileNotFoundError(f'No training events in {run.workdir} (a workdir of copied checkpoints?).')
  return _png(functools.partial(plots.plot_training_curves, runs))


def confusion_matrices(run: Run, protocols: Sequence[str] = ()) -> PNG:
  """Row-normalised confusion matrices (single view) of ``protocols`` (default: every classification protocol)."""
  entries = run.results['protocols']
  names = list(protocols) or [n for n in entries if n in schema.CLASSIFICATION_PROTOCOLS]
  matrices = {n: np.asarray(entries[n]['single_view']['confusion_matrix']) for n in names}
  return _png(functools.partial(plots.plot_confusion_matrices, matrices, run.class_names))


def per_class_table(run: Run) -> Table:
  """Per class: test videos, then the single-view accuracy of each classification protocol."""
  entries = {n: e['single_view'] for n, e in run.results['protocols'].items()
             if n in schema.CLASSIFICATION_PROTOCOLS}
  first = next(iter(entries.values()))
  counts = np.asarray(first['confusion_matrix']).sum(axis=1)
  rows = [[name, int(count)] + [entry['per_class_top1'][name] for entry in entries.values()]
          for name, count in zip(run.class_names, counts)]
  rows.append(['all', int(counts.sum())] + [entry['top1'] for entry in entries.values()])
  return Table(columns=['class', 'test videos'] + list(entries), rows=rows)


def embed(run: Run) -> Embeddings:
  """Restores the latest checkpoint and embeds both splits (one deterministic view per video)."""
  from scfa_jax.evaluation import embeddings  # pylint: disable=g-import-not-at-top
  from scfa_jax.training import parallel  # pylint: disable=g-import-not-at-top
  from scfa_jax.training import steps  # pylint: disable=g-import-not-at-top
  from scfa_jax.training import train  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  set_up = train._set_up(run.config, run.workdir, mode='eval', allow_config_change=False)  # pylint: disable=protected-access
  set_up.manager.close()
  p_embed = parallel.pmap_step(functools.partial(steps.embed_step, preprocessing_mode=set_up.preprocessing_mode),
                               donate_state=False)
  state = parallel.replicate(set_up.state)
  extract = functools.partial(embeddings.extract, p_embed, state, set_up.builder, data_config=run.config.data,
                              local_batch_size=run.config.eval.batch_size // jax.process_count())
  train_split, test_split = extract(run.config.data.train_split), extract(run.config.data.test_split)
  return Embeddings(train_split['features'], train_split['label'], test_split['features'], test_split['label'])


def embedding_map(run: Run, embedded: Embeddings) -> PNG:
  """t-SNE of the test videos' encoder features, coloured by class (the run's ``embedding_tsne.png``)."""
  coordinates = plots.tsne_2d(embedded.test_features)
  return _png(functools.partial(plots.plot_embedding_map, coordinates, embedded.test_labels, run.class_names,
                                title=f'Test videos: t-SNE of encoder features (step {run.results["step"]})'))


def retrieval(run: Run, embedded: Embeddings, queries: Sequence[int] = (), *, k: int = 5) -> PNG:
  """Test videos ``queries`` (indices into the test split; default: one per few classes) beside their top-k train
  videos, with classes and cosine similarities."""
  from scfa_jax import datasets  # pylint: disable=g-import-not-at-top
  builder = datasets.get_builder(run.config.data)
  return _png(lambda out: gallery.write(
      builder, run.config, train_features=embedded.train_features, train_labels=embedded.train_labels,
      test_features=embedded.test_features, test_labels=embedded.test_labels, out=out, queries=queries, k=k))


def run_figures(run: Run) -> dict[str, PNG]:
  """{figure name: image} of the PNGs the run itself wrote (results.json ``figures``)."""
  figures = {}
  for name, file in run.results['figures'].items():
    with open(os.path.join(run.workdir, file), 'rb') as f:
      figures[name] = PNG(f.read())
  return figures
