"""The Colab notebook stays in step with the package: its code parses and the files it names exist."""

import ast
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_notebook_code_cells_parse_and_name_real_configs():
  with open(os.path.join(ROOT, 'colab', 'scfa_tpu.ipynb')) as f:
    notebook = json.load(f)
  sources = [''.join(cell['source']) for cell in notebook['cells'] if cell['cell_type'] == 'code']
  assert sources
  for source in sources:
    python = '\n'.join(line for line in source.splitlines() if not line.lstrip().startswith(('!', '%')))
    ast.parse(python)
  configs = set(re.findall(r"/content/scfa_jax/(configs/\w+\.py)", '\n'.join(sources)))
  assert configs, 'the notebook should load configs from the checkout'
  for path in configs:
    assert os.path.isfile(os.path.join(ROOT, path)), path
  assert 'train.train_and_evaluate' in '\n'.join(sources)
