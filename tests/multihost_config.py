"""The tiny test config (tests/conftest.py) as a config file: ``--config=tests/multihost_config.py:DATA_DIR``."""

from tests.conftest import make_tiny_config


def get_config(data_dir: str):
  return make_tiny_config(data_dir)
