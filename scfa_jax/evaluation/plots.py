"""The PNG report of a run: confusion matrices, a t-SNE map of test embeddings, training curves.

Each ``plot_*`` function draws one figure into ``path`` from arrays it is
given, with matplotlib's object API (no pyplot state, no display needed);
``read_scalars`` fetches the training curves from the run's TensorBoard events.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import matplotlib
from matplotlib.figure import Figure
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from scfa_jax.evaluation import metrics

Curve = tuple[np.ndarray, np.ndarray]  # (steps, values)


def plot_confusion_matrices(matrices: Mapping[str, np.ndarray], class_names: Sequence[str], path: str) -> None:
  """One row-normalised confusion matrix per protocol, side by side (title = protocol)."""
  num_classes = len(class_names)
  side = max(4.0, 0.28 * num_classes + 2.0)
  fig = Figure(figsize=(side * len(matrices), side), layout='constrained')
  axes = fig.subplots(1, len(matrices), squeeze=False)[0]
  for ax, (name, counts) in zip(axes, matrices.items()):
    totals = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, totals, out=np.zeros(counts.shape, float), where=totals > 0)
    from sklearn import metrics as sk_metrics  # pylint: disable=g-import-not-at-top  # seconds: only when plotting
    display = sk_metrics.ConfusionMatrixDisplay(normalised, display_labels=list(class_names))
    # Values are unreadable beyond ~15 classes; the colour then carries them.
    display.plot(ax=ax, include_values=num_classes <= 15, values_format='.2f', colorbar=False,
                 xticks_rotation='vertical', cmap='Blues', im_kw={'vmin': 0.0, 'vmax': 1.0})
    ax.set_title(name)
  fig.suptitle('Confusion matrices on the test split (rows: true class, normalised to sum to 1)')
  fig.savefig(path, dpi=100)


class DegenerateInputError(ValueError):
  """The data cannot make this figure (too few points, no spread, non-finite values); the message says why."""


MIN_TSNE_POINTS = 3


def tsne_input(features: np.ndarray) -> np.ndarray:
  """Centres and rescales ``features`` [N, D] for t-SNE, or raises DegenerateInputError saying why it cannot run.

  scikit-learn's t-SNE does not reject these inputs: with (nearly) constant
  features its PCA initialisation divides by a zero spread and the Barnes-Hut
  gradient then crashes the whole process (SIGSEGV), which a tiny or collapsed
  encoder produces. Rescaling to unit spread also keeps features of a tiny
  magnitude (1e-30) away from float underflow, which crashes it the same way.
  """
  features = np.asarray(features, np.float64)
  if features.ndim != 2:
    raise DegenerateInputError(f'features must be [N, D], got shape {features.shape}')
  if len(features) < MIN_TSNE_POINTS:
    raise DegenerateInputError(f'{len(features)} test video(s); the map needs at least {MIN_TSNE_POINTS}')
  problem = metrics.non_finite_rows(features, 'test')
  if problem:
    raise DegenerateInputError(problem)
  centred = features - features.mean(axis=0)
  spread = float(np.sqrt(np.mean(centred**2)))
  scale = float(np.max(np.abs(features)))
  # Differences below float32 resolution of the values are rounding noise, not structure.
  if spread == 0.0 or spread <= 1e-6 * scale:
    raise DegenerateInputError('all test videos have (nearly) the same features: the encoder output is constant')
  return centred / spread


def tsne_2d(features: np.ndarray, *, seed: int = 0) -> np.ndarray:
  """2-D t-SNE coordinates [N, 2] of ``features`` (perplexity capped for small sets, which t-SNE requires).

  Raises:
    DegenerateInputError: inputs t-SNE cannot embed (see :func:`tsne_input`).
  """
  features = tsne_input(features)
  perplexity = float(np.clip((len(features) - 1) / 3.0, 1.0, 30.0))
  from sklearn import manifold  # pylint: disable=g-import-not-at-top  # seconds: only when plotting
  tsne = manifold.TSNE(n_components=2, perplexity=perplexity, init='pca', random_state=seed)
  coordinates = tsne.fit_transform(features)
  if not np.isfinite(coordinates).all():
    raise DegenerateInputError('t-SNE produced non-finite coordinates')
  return coordinates


def plot_embedding_map(coordinates: np.ndarray, labels: np.ndarray, class_names: Sequence[str], path: str,
                       *, title: str) -> None:
  """Scatter of 2-D coordinates, one colour per class."""
  fig = Figure(figsize=(7.5, 6), layout='constrained')
  ax = fig.subplots()
  colours = matplotlib.colormaps['tab20' if len(class_names) > 10 else 'tab10']
  for c, name in enumerate(class_names):
    points = coordinates[np.asarray(labels) == c]
    if len(points):
      ax.scatter(points[:, 0], points[:, 1], s=14, color=colours(c % colours.N), label=name)
  ax.set_title(title)
  ax.set_xticks([])
  ax.set_yticks([])
  if len(class_names) <= 20:
    ax.legend(loc='center left', bbox_to_anchor=(1.0, 0.5), fontsize='small', frameon=False)
  fig.savefig(path, dpi=100)


def plot_robustness(rows: Sequence[tuple[str, Mapping[str, float | None]]], clean: Mapping[str, float | None],
                    path: str) -> None:
  """Grouped bars: top-1 of each protocol under each perturbation, with the clean accuracy as a dashed line.

  Args:
    rows: [(label such as 'drop_frames 25%', {protocol: top-1 or None})].
    clean: {protocol: clean top-1 or None}.
    path: PNG to write.
  """
  protocols = list(clean)
  fig = Figure(figsize=(max(7.0, 0.75 * len(rows) + 2.0), 4.5), layout='constrained')
  ax = fig.subplots()
  positions = np.arange(len(rows))
  width = 0.8 / max(len(protocols), 1)
  colours = matplotlib.colormaps['tab10']
  for p, protocol in enumerate(protocols):
    values = [100.0 * (scores.get(protocol) or 0.0) for _, scores in rows]
    ax.bar(positions + (p - (len(protocols) - 1) / 2) * width, values, width, color=colours(p), label=protocol)
    if clean[protocol] is not None:
      ax.axhline(100.0 * clean[protocol], color=colours(p), linestyle='--', linewidth=1,
                 label=f'{protocol}, clean')
  ax.set_xticks(positions, [label for label, _ in rows], rotation=35, ha='right')
  ax.set_ylabel('top-1 on the test split (%)')
  ax.set_ylim(0, 100)
  ax.set_title('Robustness: frozen-encoder accuracy under test-time perturbations')
  ax.legend(fontsize='small', loc='upper left', bbox_to_anchor=(1.0, 1.0), frameon=False)
  fig.savefig(path, dpi=100)


def read_scalars(logdir: str, tags: Sequence[str]) -> dict[str, Curve]:
  """(steps, values) of each TensorBoard scalar tag written directly in ``logdir`` (subfolders are other runs)."""
  events = event_accumulator.EventAccumulator(logdir, size_guidance={event_accumulator.TENSORS: 0})
  events.Reload()
  available = set(events.Tags().get('tensors', []))
  curves = {}
  for tag in tags:
    if tag in available:
      # In write order, so a step logged twice (a resumed run) keeps its last value.
      by_step = {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)}
      steps = np.asarray(sorted(by_step))
      curves[tag] = (steps, np.asarray([by_step[s] for s in steps]))
  return curves


def plot_training_curves(runs: Mapping[str, Mapping[str, Curve]], path: str) -> None:
  """One row per run (pre-training, fine-tuning), one column per scalar (loss, learning rate)."""
  tags = list(dict.fromkeys(tag for curves in runs.values() for tag in curves))  # first-seen order
  fig = Figure(figsize=(5.0 * max(len(tags), 1), 3.2 * len(runs)), layout='constrained')
  axes = fig.subplots(len(runs), max(len(tags), 1), squeeze=False)
  for row, (run, curves) in zip(axes, runs.items()):
    for ax, tag in zip(row, tags):
      if tag in curves:
        ax.plot(*curves[tag])
      ax.set_title(f'{run}: {os.path.basename(tag)}')
      ax.set_xlabel('step')
      ax.grid(alpha=0.3)
  fig.savefig(path, dpi=100)
