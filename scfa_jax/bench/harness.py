"""What the side-by-side benchmarks share: timing a call, and running the PyTorch side in a child process.

The PyTorch side runs in its own process (``python -m <module> '<json>'``,
one JSON line out): torch.optim imports triton, whose LLVM clashes with
jaxlib's in one process, and on a GPU JAX would hold the memory. Torch is an
extra (``bench``), so its absence is reported, not raised.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from typing import Any, Callable, Optional

TORCH_MISSING = 'PyTorch is not installed: pip install -e ".[bench]"'


def time_calls(call: Callable[[], Any], *, warmup: int, reps: int) -> list[float]:
  """Wall seconds of ``reps`` calls after ``warmup`` untimed ones; ``call`` returns when its work is done."""
  for _ in range(warmup):
    call()
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return times


def torch_child(module: str, payload: Any) -> Optional[Any]:
  """The JSON that ``python -m module '<payload as JSON>'`` prints last, or None when torch is not installed.

  Raises:
    RuntimeError: the child failed; the message ends with its stderr.
  """
  if importlib.util.find_spec('torch') is None:
    return None
  proc = subprocess.run([sys.executable, '-m', module, json.dumps(payload)], capture_output=True, text=True,
                        check=False)
  if proc.returncode:
    raise RuntimeError(f'The PyTorch side ({module}) failed:\n{proc.stderr[-3000:]}')
  return json.loads(proc.stdout.strip().splitlines()[-1])
