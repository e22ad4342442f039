"""Linear probe: multinomial logistic regression on frozen encoder features."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def fit(train_features: np.ndarray, train_labels: np.ndarray, *, c: float = 1.0, max_iter: int = 1000) -> Pipeline:
  """Fits the probe on the train split only; ``.predict`` it on any test features.

  Features are standardised with statistics of the train split (a frozen-encoder
  probe must not look at the test split). L-BFGS solves the convex problem
  exactly, so the probe has no learning-rate or epoch knobs to tune.
  """
  probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
  return probe.fit(np.asarray(train_features, np.float64), np.asarray(train_labels))


def fit_predict(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, *,
                c: float = 1.0, max_iter: int = 1000) -> np.ndarray:
  """Fits on the train split only and returns the predicted labels of the test features."""
  probe = fit(train_features, train_labels, c=c, max_iter=max_iter)
  return probe.predict(np.asarray(test_features, np.float64))


def accuracy(train_features, train_labels, test_features, test_labels, *, c: float = 1.0,
             max_iter: int = 1000) -> float:
  predictions = fit_predict(train_features, train_labels, test_features, c=c, max_iter=max_iter)
  return float(np.mean(predictions == np.asarray(test_labels)))
