"""Using a trained workdir: embed, classify, search and export videos (see docs/inference.md)."""

from __future__ import annotations

from typing import Any

__all__ = ['Prediction', 'Predictor']


def __getattr__(name: str) -> Any:
  """``Predictor`` and ``Prediction`` load on first use: the commands import ``inference.cli`` first, which
  quiets TensorFlow's C++ start-up lines, and only then TensorFlow (``predictor`` imports it)."""
  if name in __all__:
    from scfa_jax.inference import predictor  # pylint: disable=g-import-not-at-top
    return getattr(predictor, name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
