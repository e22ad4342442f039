"""Benchmarks, run as ``python -m scfa_jax.bench <name>`` (see ``__main__``)."""
