r"""Compares methods over seeds: one Markdown and CSV table plus an accuracy-versus-compute plot.

Run a list of configs over several seeds (each run a separate
``python -m scfa_jax.main`` process; finished runs are reused, so an
interrupted comparison resumes), or read workdirs that already hold results:

  python -m scfa_jax.tools.compare --configs=configs/demo.py,configs/demo_ce.py \
      --seeds=0,1,2 --root=/tmp/compare
  python -m scfa_jax.tools.compare --workdirs=/tmp/compare/demo/seed0,/tmp/compare/demo/seed1 --out=/tmp/cmp

One accuracy is not a result when it moves by points between seeds, so every
number in the table is the mean with its min-max range over the runs of a
method, next to the forward compute per video from results.json.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from typing import Any, Optional, Sequence

from absl import app
from absl import flags
import numpy as np
from matplotlib.figure import Figure

RESULTS_FILE = 'results.json'
# (column title, function of results.json -> number or None); accuracies are fractions.
METRICS: dict[str, Any] = {
    'linear probe': lambda r: r.get('linear_probe_top1'),
    'kNN': lambda r: r.get('knn_top1'),
    'classifier': lambda r: r.get('classifier_top1'),
    'fine-tuned': lambda r: r.get('finetune_top1'),
    'retrieval mAP': lambda r: ((r['protocols'].get('retrieval') or {}).get('single_view') or {}).get('map'),
}


@dataclasses.dataclass(frozen=True)
class Run:
  """One finished run: its method label, seed, workdir and results."""

  method: str
  seed: Optional[int]
  workdir: str
  results: dict[str, Any]

  def gflops_per_video(self) -> Optional[float]:
    cost = self.results.get('compute')
    return None if not cost else cost['forward_gflops_per_video']['single_view']

  def images_per_video(self) -> Optional[int]:
    """Images one scored view of a test video costs (a fused sample: 1 grid + its local views)."""
    cost = self.results.get('compute')
    return None if not cost else cost['images_per_video']['single_view']


@dataclasses.dataclass(frozen=True)
class Row:
  """One method aggregated over its runs: metric -> (mean, min, max) over the runs that scored it."""

  method: str
  seeds: list[Optional[int]]
  metrics: dict[str, Optional[tuple[float, float, float]]]
  gflops_per_video: Optional[float]
  images_per_video: Optional[int] = None  # one scored view; None when the runs disagree or did not count it


def method_of(workdir: str) -> str:
  """A workdir's method label: its folder name without a trailing seed (``demo_ce/seed1`` -> ``demo_ce``)."""
  path = os.path.normpath(workdir)
  name = os.path.basename(path)
  if re.fullmatch(r'seed\d+', name):
    return os.path.basename(os.path.dirname(path))
  return re.sub(r'[_-]?seed\d+$', '', name) or name


def seed_of(workdir: str) -> Optional[int]:
  """The run's seed: from its config.json when present, else from a ``seed<N>`` in its path."""
  config_path = os.path.join(workdir, 'config.json')
  if os.path.isfile(config_path):
    with open(config_path) as f:
      seed = json.load(f).get('seed')
    if isinstance(seed, int):
      return seed
  match = re.search(r'seed(\d+)', os.path.normpath(workdir))
  return int(match.group(1)) if match else None


def load_runs(workdirs: Sequence[str]) -> tuple[list[Run], list[str]]:
  """The runs whose results.json exists; returns (runs, workdirs without results)."""
  runs, missing = [], []
  for workdir in workdirs:
    path = os.path.join(workdir, RESULTS_FILE)
    if not os.path.isfile(path):
      missing.append(workdir)
      continue
    with open(path) as f:
      runs.append(Run(method_of(workdir), seed_of(workdir), workdir, json.load(f)))
  return runs, missing


def summarize(runs: Sequence[Run]) -> list[Row]:
  """One row per method, in first-seen order."""
  methods = list(dict.fromkeys(run.method for run in runs))
  rows = []
  for method in methods:
    mine = [run for run in runs if run.method == method]
    metrics = {}
    for title, get in METRICS.items():
      values = [get(run.results) for run in mine]
      values = [float(v) for v in values if v is not None]
      metrics[title] = (float(np.mean(values)), min(values), max(values)) if values else None
    costs = [c for c in (run.gflops_per_video() for run in mine) if c is not None]
    images = {run.images_per_video() for run in mine}
    rows.append(Row(method, sorted((run.seed for run in mine), key=lambda s: (s is None, s)), metrics,
                    float(np.mean(costs)) if costs else None, images.pop() if len(images) == 1 else None))
  return rows


def _percent(cell: Optional[tuple[float, float, float]], runs: int) -> str:
  if cell is None:
    return '-'
  mean, low, high = (100 * v for v in cell)
  return f'{mean:.1f}%' if runs == 1 or low == high else f'{mean:.1f}% ({low:.1f}-{high:.1f})'


def to_markdown(rows: Sequence[Row]) -> str:
  """The comparison table: mean (min-max) over seeds of every metric any method has."""
  titles = [t for t in METRICS if any(row.metrics[t] is not None for row in rows)]
  lines = ['| method | seeds | ' + ' | '.join(titles) + ' | GFLOPs / video | images / video |',
           '|---|---|' + '---|' * len(titles) + '---|---|']
  for row in rows:
    cells = [_percent(row.metrics[t], len(row.seeds)) for t in titles]
    cost = '-' if row.gflops_per_video is None else f'{row.gflops_per_video:.3g}'
    images = '-' if row.images_per_video is None else str(row.images_per_video)
    seeds = ', '.join('?' if s is None else str(s) for s in row.seeds)
    lines.append(f'| {row.method} | {seeds} | ' + ' | '.join(cells) + f' | {cost} | {images} |')
  return '\n'.join(lines) + '\n'


def write_csv(runs: Sequence[Run], path: str) -> None:
  """One row per run (the raw numbers behind the table)."""
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['method', 'seed', 'workdir', 'step', *METRICS, 'gflops_per_video'])
    for run in runs:
      values = [METRICS[t](run.results) for t in METRICS]
      writer.writerow([run.method, run.seed, run.workdir, run.results.get('step'),
                       *['' if v is None else f'{v:.6f}' for v in values],
                       '' if run.gflops_per_video() is None else run.gflops_per_video()])


def plot_accuracy_vs_compute(rows: Sequence[Row], path: str, metric: str = 'linear probe') -> None:
  """Mean accuracy (bars: min-max over seeds) against forward GFLOPs per video, one point per method."""
  fig = Figure(figsize=(7, 4.5), layout='constrained')
  ax = fig.subplots()
  for row in rows:
    cell = row.metrics.get(metric)
    if cell is None or row.gflops_per_video is None:
      continue
    mean, low, high = (100 * v for v in cell)
    ax.errorbar([row.gflops_per_video], [mean], yerr=[[mean - low], [high - mean]], fmt='o', capsize=4)
    ax.annotate(row.method, (row.gflops_per_video, mean), textcoords='offset points', xytext=(6, 4), fontsize=9)
  ax.set_xlabel('forward GFLOPs per video (1 view)')
  ax.set_ylabel(f'{metric} top-1 (%)')
  ax.set_title(f'{metric}: mean and min-max over seeds')
  ax.grid(alpha=0.3)
  fig.savefig(path, dpi=100)


def run_configs(configs: Sequence[str], seeds: Sequence[int], root: str, overrides: Sequence[str]) -> list[str]:
  """Trains and evaluates every (config, seed) not already finished, one process each; returns the workdirs."""
  workdirs = []
  for config in configs:
    method = os.path.splitext(os.path.basename(config))[0]
    for seed in seeds:
      workdir = os.path.join(root, method, f'seed{seed}')
      workdirs.append(workdir)
      if os.path.isfile(os.path.join(workdir, RESULTS_FILE)):
        print(f'{method} seed {seed}: finished earlier, reusing {workdir}', flush=True)
        continue
      os.makedirs(workdir, exist_ok=True)
      command = [sys.executable, '-m', 'scfa_jax.main', f'--config={config}', f'--workdir={workdir}',
                 f'--config.seed={seed}', *overrides]
      start = time.time()
      with open(os.path.join(workdir, 'compare_run.log'), 'a') as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
      status = 'done' if code == 0 else f'FAILED (exit {code}; see {workdir}/compare_run.log)'
      print(f'{method} seed {seed}: {status} in {time.time() - start:.0f} s', flush=True)
  return workdirs


def compare(workdirs: Sequence[str], out: str) -> str:
  """Writes compare.md, compare.csv and accuracy_vs_compute.png into ``out``; returns the Markdown."""
  runs, missing = load_runs(workdirs)
  for workdir in missing:
    print(f'no {RESULTS_FILE} in {workdir}: left out', file=sys.stderr)
  if not runs:
    raise SystemExit(f'error: none of the {len(workdirs)} workdirs holds a {RESULTS_FILE}.')
  os.makedirs(out, exist_ok=True)
  rows = summarize(runs)
  markdown = to_markdown(rows)
  with open(os.path.join(out, 'compare.md'), 'w') as f:
    f.write(markdown)
  write_csv(runs, os.path.join(out, 'compare.csv'))
  plot_accuracy_vs_compute(rows, os.path.join(out, 'accuracy_vs_compute.png'))
  return markdown


def main(argv: Sequence[str]) -> None:
  del argv
  values = flags.FLAGS
  if bool(values.configs) == bool(values.workdirs):
    raise app.UsageError('Pass either --configs (to run them) or --workdirs (finished runs), not both.')
  if values.configs:
    missing = [c for c in values.configs if not os.path.isfile(c)]
    if missing:
      raise app.UsageError(f'No such config file: {", ".join(missing)}')
    workdirs = run_configs(values.configs, [int(s) for s in values.seeds], values.root, values.set)
    out = values.out or values.root
  else:
    workdirs = values.workdirs
    if not values.out:
      raise app.UsageError('--workdirs needs --out, the folder for the table and the plot.')
    out = values.out
  print(compare(workdirs, out), end='')
  print(f'Wrote {out}/compare.md, compare.csv and accuracy_vs_compute.png')


if __name__ == '__main__':
  # Defined only when run as a program, so importing this module defines no flags (tests, notebooks).
  flags.DEFINE_list('configs', [], 'Config files to run, e.g. configs/demo.py,configs/demo_ce.py.')
  flags.DEFINE_list('seeds', ['0'], 'Seeds to run each config with.')
  flags.DEFINE_string('root', '/tmp/scfa_compare', 'Workdirs are <root>/<config name>/seed<N>.')
  flags.DEFINE_multi_string('set', [], 'Extra override for every run, e.g. --set=--config.train.num_epochs=5.')
  flags.DEFINE_list('workdirs', [], 'Finished workdirs to compare instead of running configs.')
  flags.DEFINE_string('out', '', 'Folder for compare.md/.csv/.png (default: --root).')
  app.run(main)
