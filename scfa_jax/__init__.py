"""SCFA in JAX: supervised contrastive frame aggregation for video representation learning."""

from scfa_jax import startup as _startup

_startup.keep_keras_out_of_tensorflows_import()  # the first ``import tensorflow`` of any module skips Keras (seconds)
