"""The Colab notebooks run top to bottom (smoke mode: tiny configs) and are stored without outputs."""

import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = ('quickstart', 'explore')  # explore opens the workdir quickstart trains


def _path(name: str) -> str:
  return os.path.join(ROOT, 'colab', f'{name}.ipynb')


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_notebook_is_stored_without_outputs(name):
  with open(_path(name)) as f:
    notebook = json.load(f)
  for cell in notebook['cells']:
    if cell['cell_type'] == 'code':
      assert cell['outputs'] == [] and cell['execution_count'] is None, ''.join(cell['source'])[:80]


def test_only_the_two_notebooks_exist():
  """A new notebook gets executed here too: add it to NOTEBOOKS."""
  assert sorted(f[:-6] for f in os.listdir(os.path.join(ROOT, 'colab')) if f.endswith('.ipynb')) == sorted(NOTEBOOKS)


def test_readme_links_every_notebook():
  with open(os.path.join(ROOT, 'README.md')) as f:
    readme = f.read()
  for name in NOTEBOOKS:
    assert f'https://colab.research.google.com/github/OWNER/scfa_jax/blob/main/colab/{name}.ipynb' in readme


@pytest.fixture(scope='module')
def executed(tmp_path_factory):
  """Executes both notebooks in order in one runs folder; returns {name: executed notebook}."""
  nbformat = pytest.importorskip('nbformat')
  nbclient = pytest.importorskip('nbclient')
  runs = str(tmp_path_factory.mktemp('notebook_runs'))
  env = {'SCFA_NOTEBOOK_SMOKE': '1', 'SCFA_NOTEBOOK_RUNS': runs, 'JAX_PLATFORMS': 'cpu',
         'PYTHONPATH': ROOT + os.pathsep + os.environ.get('PYTHONPATH', '')}
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)  # the kernel inherits this process's environment
  try:
    done = {}
    for name in NOTEBOOKS:
      notebook = nbformat.read(_path(name), as_version=4)
      client = nbclient.NotebookClient(notebook, timeout=300, kernel_name='python3',
                                       resources={'metadata': {'path': ROOT}})
      client.execute()  # raises CellExecutionError, naming the cell, on any error
      done[name] = notebook
    return done
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v


def _text(notebook) -> str:
  parts = []
  for cell in notebook.cells:
    for output in cell.get('outputs', []):
      parts.append(output.get('text', ''))
      parts.extend(str(v) for k, v in output.get('data', {}).items() if k.startswith('text/'))
  return '\n'.join(parts)


def _images(notebook) -> int:
  return sum('image/png' in output.get('data', {}) for cell in notebook.cells for output in cell.get('outputs', []))


@pytest.mark.slow(seconds=25)
def test_quickstart_trains_and_shows_results_and_figures(executed):
  text = _text(executed['quickstart'])
  assert 'linear probe' in text and 'kNN' in text  # the results table
  assert 'step 6/6' in text  # one log line per log step reached the cell output
  assert 'Not on Colab: the Drive cells are skipped.' in text
  assert 'absl::InitializeLog' not in text and not re.search(r'^[IWE]\d{4} ', text, re.M)  # no C++ log lines
  assert _images(executed['quickstart']) == 4  # confusion matrix, embedding map, curves, retrieval examples


@pytest.mark.slow(seconds=25)  # executes both notebooks (the module fixture: 52 s on the 2-core AVX2 machine)
def test_explore_shows_every_figure(executed):
  text = _text(executed['explore'])
  assert 'move_right' in text  # per-class table
  # training views, curves, confusion matrices, embedding map, retrieval
  assert _images(executed['explore']) == 5
  # an uploaded clip (off Colab a generated one) classified and searched against the training split
  assert 'Not on Colab: classifying a generated move_up clip' in text
  assert re.search(r'example_move_up\.mp4 \w+ [\d.]+% .*\[(finetune|classifier|probe|knn)\]', text)
  assert re.search(r'^  1\. [\d.]+  move_\w+_0_\d{4}  \(\w+\)$', text, re.M)
