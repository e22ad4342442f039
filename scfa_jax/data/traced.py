"""Pipeline functions are traced as written, without AutoGraph.

``tf.data`` hands every map, filter and scan function to AutoGraph, which
parses the Python source of the function and of everything it calls and
rewrites its control flow before tracing. Ours need none of it: they branch
with ``tf.where``/``tf.cond`` and loop with ``tf.map_fn`` or over Python
constants, never with a Python ``if``/``for`` on a tensor. The rewrite cost
each process about 4.5 s of its start on 2 cores (the train pipeline's 23
functions, 3.5 s; evaluation's, 1 s), more than tracing itself, in every run,
evaluation and inference tool. Without it a Python ``if`` on a tensor fails at trace time
(``OperatorNotAllowedInGraphError``) instead of being rewritten: loud, and
caught by the tests that build each pipeline.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from scfa_jax import startup

F = TypeVar('F', bound=Callable)


def as_written(fn: F) -> F:
  """``fn`` for ``Dataset.map``/``filter``/``flat_map``/``scan``/``reduce``: traced without AutoGraph."""
  tf = startup.import_tensorflow()  # here, not at import: heads and labels import this before TF is needed
  return tf.autograph.experimental.do_not_convert(fn)
