"""Per-layer timing of a bottleneck ResNet's convolutions, JAX against PyTorch: where the step's gap is.

``python -m scfa_jax.bench layers --depth=50 --image_size=224 --batch=8``
times every distinct convolution of the network (the stem, each stage's
1x1 and 3x3 shapes, strided or not) on the batch of grids a training step
sees (2 per video): the forward, the input gradient and the weight gradient,
each as its own compiled function, as ``models.resnet`` builds the layer on
this backend (``make_conv``: 1x1 convolutions as matrix products on CPU).
PyTorch (``F.conv2d``, channels-last, as the step's reference) is timed in a
child process (``bench.harness`` says why). Each row counts
how often the layer occurs, so the totals are per training step and add up
to the convolution part of ``bench train_step``'s figure. The stem's input
gradient (the 7x7 layer) is 0: a step never computes it (its input is the data).

Why it exists: a whole-step ratio says that JAX is slower, not which kernels
are; this says which layers carry the gap (docs/performance.md).
"""

from __future__ import annotations

import collections
import json
import statistics
import sys
from typing import Any, Callable

from scfa_jax.bench import harness

Layer = tuple[int, int, int, int, int]  # (input side, in channels, out channels, kernel, stride)


def resnet_layers(depth: int, image_size: int, width: int = 64) -> list[tuple[Layer, int]]:
  """Distinct convolutions of a bottleneck ResNet ('v1.5': stride in the 3x3) with how often each occurs."""
  from scfa_jax.models import resnet  # pylint: disable=g-import-not-at-top
  block_type, stage_sizes = resnet.DEPTHS[depth]
  if block_type != 'bottleneck':
    raise ValueError(f'--depth={depth} is not a bottleneck ResNet; use 50, 101 or 152.')
  counts: collections.Counter[Layer] = collections.Counter()
  counts[(image_size, 3, width, 7, 2)] += 1
  side = -(-image_size // 4)  # stem stride 2, then the max pool's stride 2
  channels = width
  for stage, blocks in enumerate(stage_sizes):
    filters = width * 2**stage
    for block in range(blocks):
      stride = 2 if stage > 0 and block == 0 else 1
      counts[(side, channels, filters, 1, 1)] += 1
      counts[(side, filters, filters, 3, stride)] += 1
      out_side = -(-side // stride)
      counts[(out_side, filters, 4 * filters, 1, 1)] += 1
      if block == 0:
        counts[(side, channels, 4 * filters, 1, stride)] += 1
      side, channels = out_side, 4 * filters
  return sorted(counts.items(), key=lambda item: (-item[0][0], item[0][1], item[0][3]))


def _median_ms(call: Callable[[], Any], reps: int) -> float:
  return round(statistics.median(harness.time_calls(call, warmup=2, reps=reps)) * 1e3, 2)


def measure_jax(layers: list[tuple[Layer, int]], grids: int, reps: int) -> list[dict[str, float]]:
  """Forward, input-gradient and weight-gradient milliseconds of each layer, as ``models.resnet`` builds it."""
  import jax  # pylint: disable=g-import-not-at-top
  from scfa_jax.models import resnet  # pylint: disable=g-import-not-at-top
  rows = []
  for (side, cin, cout, k, stride), _ in layers:
    pad = 'VALID' if k == 1 else ((k // 2, k // 2),) * 2
    conv = resnet.make_conv(cout, (k, k), (stride, stride), padding=pad, name='conv', use_bias=False, dtype=None)
    x = jax.random.normal(jax.random.key(0), (grids, side, side, cin))
    params = conv.init(jax.random.key(1), x)
    grad = jax.random.normal(jax.random.key(2), jax.eval_shape(conv.apply, params, x).shape)
    forward = jax.jit(conv.apply)
    input_grad = jax.jit(lambda p, x, g: jax.vjp(lambda x: conv.apply(p, x), x)[1](g))
    weight_grad = jax.jit(lambda p, x, g: jax.vjp(lambda p: conv.apply(p, x), p)[1](g))
    rows.append({
        'fwd_ms': _median_ms(lambda: jax.block_until_ready(forward(params, x)), reps),
        'dx_ms': 0.0 if k == 7 else _median_ms(lambda: jax.block_until_ready(input_grad(params, x, grad)), reps),
        'dw_ms': _median_ms(lambda: jax.block_until_ready(weight_grad(params, x, grad)), reps),
    })
  return rows


def measure_torch(layers: list[tuple[Layer, int]], grids: int, reps: int) -> list[dict[str, float]]:
  """The same three timings for ``F.conv2d`` in channels-last memory format (run in a child process).

  On the GPU when torch sees one (as JAX would use it), synchronised after each call; else on the CPU.
  """
  import torch  # pylint: disable=g-import-not-at-top
  from torch.nn import functional as F  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  finish = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
  rows = []
  for (side, cin, cout, k, stride), _ in layers:
    x = torch.randn(grids, cin, side, side, device=device).to(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(cout, cin, k, k, device=device, requires_grad=True)
    conv = lambda x, w, k=k, stride=stride: F.conv2d(x, w, stride=stride, padding=k // 2)  # pylint: disable=unnecessary-lambda-assignment
    grad = torch.randn_like(conv(x, w))

    def forward():
      with torch.no_grad():
        conv(x, w)
      finish()

    def gradient(wrt: str):
      inputs, weights = (x, w.detach()) if wrt == 'x' else (x.detach(), w)
      torch.autograd.grad(conv(inputs, weights), inputs if wrt == 'x' else weights, grad)
      finish()

    rows.append({
        'fwd_ms': _median_ms(forward, reps),
        'dx_ms': 0.0 if k == 7 else _median_ms(lambda: gradient('x'), reps),
        'dw_ms': _median_ms(lambda: gradient('w'), reps),
    })
  # PyTorch's gradients include their forward (autograd needs it); the forward is subtracted to compare kernels.
  for row in rows:
    row['dx_ms'] = round(max(row['dx_ms'] - row['fwd_ms'], 0.0), 2) if row['dx_ms'] else 0.0
    row['dw_ms'] = round(max(row['dw_ms'] - row['fwd_ms'], 0.0), 2)
  return rows


def run(depth: int, image_size: int, batch: int, width: int, reps: int, with_torch: bool) -> dict[str, Any]:
  """Both frameworks' per-layer figures and per-step totals (each layer times how often it occurs)."""
  import jax  # pylint: disable=g-import-not-at-top
  layers = resnet_layers(depth, image_size, width)
  grids = 2 * batch
  jax_rows = measure_jax(layers, grids, reps)
  torch_rows, torch_error = None, None
  if with_torch:
    try:
      torch_rows = harness.torch_child('scfa_jax.bench.layers', [layers, grids, reps])
      torch_error = None if torch_rows is not None else f'{harness.TORCH_MISSING} (or --notorch)'
    except RuntimeError as e:
      torch_error = str(e).strip().splitlines()[-1]
  rows = []
  for index, (layer, count) in enumerate(layers):
    side, cin, cout, k, stride = layer
    row = {'layer': f'{k}x{k}/{stride} {cin}->{cout} @{side}', 'count': count, 'jax': jax_rows[index]}
    if torch_rows:
      row['torch'] = torch_rows[index]
    rows.append(row)
  totals = {name: {part: round(sum(r[name][part] * r['count'] for r in rows), 1) for part in ('fwd_ms', 'dx_ms', 'dw_ms')}
            for name in (('jax', 'torch') if torch_rows else ('jax',))}
  return {'bench': 'layers', 'backend': jax.default_backend(), 'depth': depth, 'image_size': image_size,
          'grids': grids, 'reps': reps, 'rows': rows, 'per_step_totals_ms': totals, 'torch_error': torch_error}


def format_table(results: dict[str, Any]) -> str:
  """A console table: one line per layer, then per-step totals."""
  has_torch = any('torch' in row for row in results['rows'])
  lines = [f'{"layer":<26} {"n":>2}  {"JAX fwd / dx / dw ms":>24}' + (f'  {"PyTorch fwd / dx / dw ms":>26}' if has_torch else '')]
  parts = ('fwd_ms', 'dx_ms', 'dw_ms')
  for row in results['rows']:
    timings = lambda name, row=row: ' / '.join(f'{row[name][p]:6.1f}' for p in parts)  # pylint: disable=unnecessary-lambda-assignment
    line = f'{row["layer"]:<26} {row["count"]:>2}  {timings("jax"):>24}'
    if has_torch:
      line += f'  {timings("torch"):>26}'
    lines.append(line)
  for name, total in results['per_step_totals_ms'].items():
    lines.append(f'per step, {name}: forward {total["fwd_ms"]} ms, input gradients {total["dx_ms"]} ms, '
                 f'weight gradients {total["dw_ms"]} ms')
  if results['torch_error']:
    lines.append(f'PyTorch not timed: {results["torch_error"]}')
  return '\n'.join(lines)


if __name__ == '__main__':  # the PyTorch child: python -m scfa_jax.bench.layers '[layers, grids, reps]'
  _layers, _grids, _reps = json.loads(sys.argv[1])
  print(json.dumps(measure_torch([(tuple(layer), count) for layer, count in _layers], _grids, _reps)))
