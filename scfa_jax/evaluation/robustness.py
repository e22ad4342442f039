"""The robustness report: frozen-encoder accuracy when the test videos are imperfect.

The linear probe and the kNN memory are fitted on the *clean* train split,
exactly as for the headline numbers, and then scored on the test split under
each perturbation of ``data.perturbations.standard_perturbations`` (frames
dropped, playback speed changed halfway through, a segment cut out,
brightness, contrast, a colour cast). The drop from the clean number is what a user deploying on real,
imperfect video should expect.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional, Sequence

import ml_collections
import numpy as np

from scfa_jax.data import perturbations
from scfa_jax.evaluation import knn
from scfa_jax.evaluation import linear_probe
from scfa_jax.evaluation import metrics

# {perturbation: {setting: {'linear_probe': top-1 or None, 'knn': top-1 or None}}}
Report = dict[str, dict[str, dict[str, Optional[float]]]]


def robustness_report(embed_test: Callable[[perturbations.Perturbation], dict[str, np.ndarray]],
                      train: dict[str, np.ndarray], eval_config: ml_collections.ConfigDict, num_classes: int,
                      perturbation_list: Optional[Sequence[perturbations.Perturbation]] = None) -> Report:
  """Scores the probe and kNN on the test split under every perturbation.

  Args:
    embed_test: perturbation -> ``embeddings.extract`` of the perturbed test split
      ({'features': [N, D], 'label': [N]}).
    train: the clean train split's features and labels.
    eval_config: ``config.eval`` (probe and kNN settings).
    num_classes: label count.
    perturbation_list: defaults to ``perturbations.standard_perturbations()``.

  Returns:
    perturbation -> setting -> protocol -> top-1 (None where the perturbed
    features are non-finite).
  """
  probe = linear_probe.fit(train['features'], train['label'], c=eval_config.linear_probe_c,
                           max_iter=eval_config.linear_probe_max_iter)
  report: Report = {}
  for perturbation in perturbation_list or perturbations.standard_perturbations():
    test = embed_test(perturbation)
    features, labels = test['features'], test['label']
    scores: dict[str, Optional[float]] = {'linear_probe': None, 'knn': None}
    if np.isfinite(features).all():
      scores['linear_probe'] = metrics.top1(labels, probe.predict(np.asarray(features, np.float64)))
      votes = knn.knn_scores(train['features'], train['label'], features, k=eval_config.knn_k,
                             num_classes=num_classes, temperature=eval_config.knn_temperature)
      scores['knn'] = metrics.top1(labels, votes.argmax(-1))
    else:
      logging.warning('Robustness: non-finite features under %s %s; not scored.', perturbation.name,
                      perturbation.setting)
    report.setdefault(perturbation.name, {})[perturbation.setting] = scores
    logging.info('Robustness %s %s: linear probe %s, kNN %s', perturbation.name, perturbation.setting,
                 scores['linear_probe'], scores['knn'])
  return report


def flatten(report: Report) -> list[tuple[str, str, dict[str, Optional[float]]]]:
  """[(perturbation, setting, scores)] in report order, for tables and plots."""
  return [(name, setting, scores) for name, settings in report.items() for setting, scores in settings.items()]


def scalars(report: Report) -> dict[str, float]:
  """TensorBoard scalars eval/robustness/<perturbation>_<setting>/<protocol>."""
  return {f'eval/robustness/{name}_{setting}/{protocol}': value
          for name, setting, scores in flatten(report) for protocol, value in scores.items() if value is not None}


def summary_lines(report: Report, clean: dict[str, Any]) -> list[str]:
  """Console lines: each perturbation's probe and kNN top-1 and the change from the clean numbers."""
  lines = ['  robustness (linear probe / kNN, change from clean):']
  for name, setting, scores in flatten(report):
    cells = []
    for protocol in ('linear_probe', 'knn'):
      value, base = scores[protocol], clean.get(f'{protocol}_top1')
      if value is None:
        cells.append('-')
      else:
        cells.append(f'{value:.1%}' + ('' if base is None else f' ({100 * (value - base):+.1f})'))
    lines.append(f'    {name + " " + setting:<24}' + ' / '.join(cells))
  return lines
