"""Using a trained workdir: embed, classify, search and export videos (see docs/inference.md)."""

from scfa_jax.inference.predictor import Prediction
from scfa_jax.inference.predictor import Predictor

__all__ = ['Prediction', 'Predictor']
