"""Classification metrics of predicted labels: top-1, per-class accuracy, confusion matrix; non-finite features.

Pure numpy functions of (labels, predictions), shared by every protocol so that
the linear probe, kNN and the classifiers are scored identically.
"""

from __future__ import annotations

import numpy as np


def non_finite_rows(features: np.ndarray, split: str, what: str = 'features') -> str | None:
  """Why ``features`` [N, ...] cannot be scored or drawn (rows with NaN/Inf), or None."""
  bad = int((~np.isfinite(np.asarray(features, np.float64)).reshape(len(features), -1).all(axis=1)).sum())
  return f'{bad} of {len(features)} {split} videos have non-finite (NaN/Inf) {what}' if bad else None


def top1(labels: np.ndarray, predictions: np.ndarray) -> float:
  """Fraction of videos whose predicted class is the true one."""
  return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
  """Counts [C, C]: row = true class, column = predicted class (classes absent from the split give zero rows)."""
  from sklearn import metrics as sk_metrics  # pylint: disable=g-import-not-at-top  # seconds at import
  return sk_metrics.confusion_matrix(labels, predictions, labels=np.arange(num_classes))


def per_class_accuracy(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
  """Accuracy within each true class [C] (its recall); NaN for classes with no test video.

  A mean over classes weights rare classes like common ones, which the overall
  top-1 does not; on imbalanced test splits (Penn Action) both are worth reading.
  """
  counts = confusion_matrix(labels, predictions, num_classes)
  totals = counts.sum(axis=1)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(totals > 0, np.diag(counts) / totals, np.nan)
