"""What a person or a script reads of an evaluation: results.json on disk, the console table, TensorBoard scalars.

Pure functions of the results dict (``schema.RESULTS_SCHEMA``), plus one
writer that replaces results.json atomically, so a run killed while writing
leaves the previous complete file rather than half a file. A protocol that
could not be scored has ``single_view: null`` and a ``reason``; every function
here shows that instead of failing on it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from scfa_jax.evaluation import schema

RESULTS_FILE = 'results.json'

_PROTOCOL_NAMES = {'linear_probe': 'linear probe', 'knn': 'kNN', 'classifier': 'classifier (CE-trained)',
                   'finetune': 'fine-tuned'}


def write_results(results: dict[str, Any], workdir: str) -> str:
  """Validates ``results`` against the schema and writes ``<workdir>/results.json`` atomically; returns the path."""
  schema.validate(results)
  path = os.path.join(workdir, RESULTS_FILE)
  partial = path + '.tmp'
  with open(partial, 'w') as f:
    json.dump(results, f, indent=2)
    f.flush()
    os.fsync(f.fileno())
  os.replace(partial, path)
  return path


def eval_scalars(results: dict[str, Any]) -> dict[str, float]:
  """TensorBoard scalars: eval/<protocol>_top1[_averaged], eval/retrieval_<metric>[_averaged] (scored ones only)."""
  scalars = {}
  for name, entry in results['protocols'].items():
    for view, suffix in (('single_view', ''), ('averaged', '_averaged')):
      if entry[view] is None:
        continue
      if name == 'retrieval':
        scalars.update({f'eval/retrieval_{k}{suffix}': v for k, v in entry[view].items() if k != 'num_queries'})
      else:
        scalars[f'eval/{name}_top1{suffix}'] = entry[view]['top1']
  from scfa_jax.evaluation import robustness  # pylint: disable=g-import-not-at-top  (scikit-learn: not for inference)
  scalars.update(robustness.scalars(results.get('robustness') or {}))
  return scalars


def _cell(entry: dict[str, Any], view: str, width: int) -> str:
  if entry[view] is None:
    return f'{"-":>{width}}'
  return f'{entry[view]["top1"]:>{width}.1%}'


def format_summary(results: dict[str, Any]) -> str:
  """A short, human-readable table of the results: one row per protocol, one column per view setting."""
  local = results.get('settings', {}).get('local_views', 0)
  k = f"{results['num_test_clips']}+{local} local" if local else results['num_test_clips']
  averaged = results['num_test_clips'] > 1 or local > 0
  lines = [f'Results on {results["dataset"]} {results["test_split"]} ({results["num_test"]} videos, '
           f'{results["num_classes"]} classes; trained on {results["num_train"]} {results["train_split"]} videos, '
           f'step {results["step"]})']
  width = max(10, len(f'{k} views') + 2)
  lines.append(f'  {"top-1 accuracy":<26}{"1 view":>8}' + (f'{f"{k} views":>{width}}' if averaged else ''))
  reasons = []
  for name, entry in results['protocols'].items():
    if name == 'retrieval':
      continue
    label = _PROTOCOL_NAMES[name] + (f' (k={results["knn_k"]})' if name == 'knn' else '')
    lines.append(f'  {label:<26}{_cell(entry, "single_view", 8)}' + (_cell(entry, 'averaged', width) if averaged else ''))
    if entry.get('reason'):
      reasons.append(f'  {_PROTOCOL_NAMES[name]} not scored: {entry["reason"]}')
  lines.append(f'  {"chance (majority class)":<26}{results["chance"]:>8.1%}')
  retrieval = results['protocols'].get('retrieval')
  if retrieval is not None:
    for view, title in (('single_view', '1 view'), ('averaged', f'{k} views')):
      found = retrieval[view]
      if found is not None:
        recalls = '  '.join(f'R@{key[7:]} {v:.1%}' for key, v in found.items() if key.startswith('recall@'))
        lines.append(f'  retrieval, {title}: {recalls}  mAP {found["map"]:.1%}')
    if retrieval.get('reason'):
      reasons.append(f'  retrieval not scored: {retrieval["reason"]}')
  probe = results['protocols']['linear_probe']['single_view']
  if probe is not None:
    scored = sorted((v, n) for n, v in probe['per_class_top1'].items() if v is not None)
    lines.append('  hardest classes (linear probe): ' + ', '.join(f'{n} {v:.0%}' for v, n in scored[:3]))
  cost = results.get('compute')
  if cost:
    per_video = cost['forward_gflops_per_video']
    lines.append(f'  forward compute: {per_video["single_view"]:.3g} GFLOPs per video (1 view)'
                 + (f', {per_video["averaged"]:.3g} ({k} views)' if averaged else ''))
  if results.get('robustness'):
    from scfa_jax.evaluation import robustness  # pylint: disable=g-import-not-at-top
    lines.extend(robustness.summary_lines(results['robustness'], results))
  lines.extend(reasons)
  if results['figures']:
    lines.append('  figures: ' + ', '.join(results['figures'].values()))
  for name, reason in results.get('figure_errors', {}).items():
    lines.append(f'  figure {name} not drawn: {reason}')
  return '\n'.join(lines)
