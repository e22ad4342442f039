"""Linear probe: multinomial logistic regression on frozen encoder features."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
  from sklearn.pipeline import Pipeline


def fit(train_features: np.ndarray, train_labels: np.ndarray, *, c: float = 1.0, max_iter: int = 1000) -> Pipeline:
  """Fits the probe on the train split only; ``.predict`` it on any test features.

  Features are standardised with statistics of the train split (a frozen-encoder
  probe must not look at the test split). L-BFGS solves the convex problem
  exactly, so the probe has no learning-rate or epoch knobs to tune.
  """
  # scikit-learn loads here, not at import: the inference commands import this module and never fit (~1 s).
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  from sklearn.pipeline import make_pipeline  # pylint: disable=g-import-not-at-top
  from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top
  probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
  return probe.fit(np.asarray(train_features, np.float64), np.asarray(train_labels))


def accuracy(train_features, train_labels, test_features, test_labels, *, c: float = 1.0,
             max_iter: int = 1000) -> float:
  """Top-1 of a probe fitted on the train split, measured on the test split."""
  predictions = fit(train_features, train_labels, c=c, max_iter=max_iter).predict(np.asarray(test_features, np.float64))
  return float(np.mean(predictions == np.asarray(test_labels)))
