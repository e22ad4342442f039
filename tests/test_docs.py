"""The README and docs/ cannot go stale: every command, config override, config file and link they show works.

Commands are read from fenced code blocks and from inline code that starts
with ``python -m scfa_jax``. For each one: the module exists, every ``--flag``
is one the module accepts (as its own ``--helpfull`` / ``--help`` lists them,
so flags defined in helper modules count), ``--config=FILE`` names a file that
exists, and ``--config.a.b=value`` overrides parse against that config file with
ml_collections' own parser (unknown field or wrong type fails). Figures stay
the developers' job; commands and names are checked.
"""

from __future__ import annotations

import concurrent.futures
import functools
import glob
import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [os.path.join(ROOT, 'README.md'), os.path.join(ROOT, 'CHANGELOG.md')] + sorted(
    glob.glob(os.path.join(ROOT, 'docs', '*.md')))
_FENCE = re.compile(r'^```[^\n]*\n(.*?)^```', re.M | re.S)
_INLINE = re.compile(r'`(python -m scfa_jax[^`]*)`')
_LINK = re.compile(r'\]\(([^)\s]+)\)')
_CONFIG_FILE = re.compile(r'\bconfigs/[A-Za-z0-9_]+\.py\b')
_PLACEHOLDER = re.compile(r'<[^>]*>|\.\.\.|\bN\b')
# Any ``--config.a.b`` or ``--config.a.b=value`` in the text: prose, tables, code, ``--set=`` values.
_ANY_OVERRIDE = re.compile(r'--config\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?:=([^\s`"\'|]*))?')


def _read(path: str) -> str:
  with open(path, encoding='utf-8') as f:
    return f.read()


def _rel(path: str) -> str:
  return os.path.relpath(path, ROOT)


def shell_lines(block: str) -> list[str]:
  """A fenced block's command lines: continuations joined, prompts and comments dropped."""
  lines, current = [], ''
  for raw in block.split('\n'):
    line = raw.rstrip()
    if line.startswith('$ '):
      line = line[2:]
    if line.endswith('\\'):
      current += line[:-1] + ' '
      continue
    current += line
    if current.strip() and not current.strip().startswith('#'):
      lines.append(' '.join(current.split(' #')[0].split()))
    current = ''
  return lines


def commands_in(line: str) -> list[list[str]]:
  """Each ``python -m scfa_jax...`` command of a shell line, as tokens."""
  try:
    tokens = shlex.split(line)
  except ValueError:
    return []
  commands, current = [], []
  for token in tokens + ['&&']:
    if token in ('&&', ';', '|', '||'):
      if current[:2] == ['python', '-m'] and len(current) > 2 and current[2].startswith('scfa_jax'):
        commands.append(current)
      current = []
    else:
      current.append(token)
  return commands


def all_commands() -> list[tuple[str, list[str]]]:
  found = []
  for path in DOCS:
    text = _read(path)
    for block in _FENCE.findall(text):
      for line in shell_lines(block):
        found += [(_rel(path), c) for c in commands_in(line)]
    prose = _FENCE.sub('', text)
    for snippet in _INLINE.findall(prose):
      found += [(_rel(path), c) for c in commands_in(snippet)]
  return found


COMMANDS = all_commands()


@functools.cache
def accepted_flags(module: str) -> frozenset[str]:
  """The flags ``python -m module`` accepts, from its own help text (absl --helpfull, else argparse --help)."""
  names = set()
  for help_flag in ('--helpfull', '--help'):  # absl lists every defined flag with --helpfull; argparse with --help
    result = subprocess.run([sys.executable, '-m', module, help_flag], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, 'PYTHONPATH': ROOT + os.pathsep + os.environ.get('PYTHONPATH', '')},
                            timeout=300, check=False)
    for line in (result.stdout + result.stderr).splitlines():
      if line.lstrip().startswith('-'):
        names.update(re.findall(r'--(?:\[no\])?([A-Za-z0-9_]+)', line))
    if result.returncode != 2:  # 2: argparse, which does not know --helpfull
      break
  return frozenset(names)


def test_docs_show_commands():
  """The collector itself works: the README's demo and test commands are among those checked."""
  modules = {c[2] for _, c in COMMANDS}
  assert {'scfa_jax.main', 'scfa_jax.tools.port_weights', 'scfa_jax.tools.build_dataset'} <= modules
  assert len(COMMANDS) > 20


@pytest.fixture(scope='module')
def flags_by_module() -> dict[str, frozenset[str]]:
  modules = sorted({c[2] for _, c in COMMANDS})
  with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    return dict(zip(modules, pool.map(accepted_flags, modules)))


def test_every_module_exists():
  missing = [(doc, c[2]) for doc, c in COMMANDS if importlib.util.find_spec(c[2]) is None]
  assert not missing, f'python -m modules that do not exist: {missing}'


@pytest.mark.slow
def test_every_flag_is_accepted(flags_by_module):
  unknown = []
  for doc, command in COMMANDS:
    accepted = flags_by_module[command[2]]
    for token in command[3:]:
      if not token.startswith('--') or token.startswith('--config.'):
        continue
      name = token[2:].split('=')[0]
      if name.startswith('no') and name[2:] in accepted:
        continue
      if name not in accepted:
        unknown.append(f'{doc}: {token} ({command[2]})')
  assert not unknown, 'flags the module does not accept:\n' + '\n'.join(unknown)


def _config_file(command: list[str]) -> str:
  for token in command:
    if token.startswith('--config='):
      return token.split('=', 1)[1]
  return os.path.join('scfa_jax', 'config.py')  # the defaults every configs/*.py extends


def test_every_config_override_parses():
  """``--config.a.b=value`` names a real field and the value has its type, through ml_collections' parser."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  errors = []
  for doc, command in COMMANDS:
    overrides = [t for t in command if t.startswith('--config.')]
    if not overrides:
      continue
    checked = [t for t in overrides if not _PLACEHOLDER.search(t.split('=', 1)[-1])]
    path = os.path.join(ROOT, _config_file(command))
    values = flags.FlagValues()
    argv = ['prog', f'--config={path}'] + checked
    try:  # ml_collections registers the override flags from the argv it is given at definition
      config_flags.DEFINE_config_file('config', None, flag_values=values, lock_config=True, sys_argv=argv)
      values(argv)
      values.config.keys()
    except Exception as e:  # pylint: disable=broad-except
      errors.append(f'{doc}: {" ".join(command)}\n    {type(e).__name__}: {e}')
  assert not errors, '\n'.join(errors)


def overrides_anywhere(path: str) -> list[tuple[int, str, str, str | None]]:
  """Every ``--config.X[=V]`` of a doc, wherever it stands: (line number, text as written, field X, value V or None).

  A value ends at white space, a backtick, a quote or a table bar; sentence
  punctuation after it and an unmatched closing bracket are not part of it.
  """
  found = []
  for number, line in enumerate(_read(path).split('\n'), 1):
    for match in _ANY_OVERRIDE.finditer(line):
      field, value = match.group(1), match.group(2)
      if value is not None:
        value = value.rstrip('.,;:')
        while value.endswith(')') and value.count(')') > value.count('('):
          value = value[:-1].rstrip('.,;:')
      written = f'--config.{field}' + ('' if value is None else f'={value}')
      found.append((number, written, field, value))
  return found


def override_error(field: str, value: str | None, config_path: str) -> str | None:
  """Why ``--config.field=value`` does not apply to the config at ``config_path`` (None if it does).

  The field must exist (a group such as ``eval`` in ``--config.eval.*`` counts);
  a value, unless a placeholder (``N``, ``K``, ``<folder>``), must parse to the
  field's type with ml_collections' own override parser.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  placeholder = value is None or _PLACEHOLDER.search(value) or re.fullmatch(r'[A-Z]', value)
  argv = ['prog', f'--config={config_path}'] + ([] if placeholder else [f'--config.{field}={value}'])
  values = flags.FlagValues()
  try:
    config_flags.DEFINE_config_file('config', None, flag_values=values, lock_config=True, sys_argv=argv)
    values(argv)
    node = values.config
    for part in field.split('.'):
      node = node[part]
  except (KeyError, AttributeError) as e:  # ml_collections says which part is unknown and what it resembles
    hint = re.search(r'Did you mean "(\w+)"', str(e))
    return f'no field {field!r} in the config schema' + (f' (did you mean {hint.group(1)!r}?)' if hint else '')
  except Exception as e:  # pylint: disable=broad-except
    return f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
  return None


def test_every_config_override_anywhere_in_the_docs_is_valid():
  """Prose, tables and ``--set=`` values too (``--config.train.num_epoch=3`` in a sentence passed before)."""
  schema = os.path.join(ROOT, 'scfa_jax', 'config.py')  # every configs/*.py extends it without adding fields
  docs = [p for p in DOCS if not p.endswith('CHANGELOG.md')]  # history may name what is gone
  found = [(_rel(path), *o) for path in docs for o in overrides_anywhere(path)]
  assert len(found) > 50, 'the collector found too few overrides to be reading the docs'
  bad = []
  for doc, number, written, field, value in found:
    why = override_error(field, value, schema)
    if why:
      bad.append(f'{doc}:{number}: {written}: {why}')
  assert not bad, 'config overrides the schema refuses:\n' + '\n'.join(bad)


def test_override_collector_reads_prose_tables_and_set_values(tmp_path):
  doc = tmp_path / 'doc.md'
  doc.write_text('Pass `--config.train.num_epoch=3`.\n| x (`--config.eval.local_views=1`) | 2 |\n'
                 'D="--set=--config.data.name=synthetic_detail --set=--config.eval.plots=False"\n'
                 '(with --config.seed=N), `--config.eval.*` may change\n')
  assert [(n, w) for n, w, _, _ in overrides_anywhere(str(doc))] == [
      (1, '--config.train.num_epoch=3'), (2, '--config.eval.local_views=1'),
      (3, '--config.data.name=synthetic_detail'), (3, '--config.eval.plots=False'), (4, '--config.seed=N'),
      (4, '--config.eval')]
  schema = os.path.join(ROOT, 'scfa_jax', 'config.py')
  assert 'num_epoch' in override_error('train.num_epoch', '3', schema)
  assert override_error('train.num_epochs', '3', schema) is None
  assert override_error('train.num_epochs', 'three', schema) is not None
  assert override_error('eval.robustness', 'maybe', schema) is not None
  assert override_error('seed', 'N', schema) is None and override_error('eval', None, schema) is None


def test_every_config_file_named_exists():
  missing = sorted({(_rel(p), name) for p in DOCS for name in _CONFIG_FILE.findall(_read(p))
                    if not os.path.exists(os.path.join(ROOT, name))})
  assert not missing, f'config files that do not exist: {missing}'


def github_anchor(heading: str) -> str:
  """The id GitHub gives a Markdown heading."""
  text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
  return text.replace(' ', '-')


def anchors(path: str) -> set[str]:
  text = _FENCE.sub('', _read(path))
  return {github_anchor(h) for h in re.findall(r'^#+\s+(.*)$', text, re.M)}


def test_every_relative_link_resolves():
  broken = []
  for path in DOCS:
    prose = re.sub(r'`[^`\n]*`', '', _FENCE.sub('', _read(path)))  # code is not a link
    for target in _LINK.findall(prose):
      if re.match(r'[a-z]+:', target):  # http(s):, mailto:
        continue
      file_part, _, anchor = target.partition('#')
      resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
      if not os.path.exists(resolved):
        broken.append(f'{_rel(path)}: {target} (no file {_rel(resolved)})')
      elif anchor and resolved.endswith('.md') and anchor not in anchors(resolved):
        broken.append(f'{_rel(path)}: {target} (no heading #{anchor} in {_rel(resolved)})')
  assert not broken, 'broken links:\n' + '\n'.join(broken)


def test_shell_line_parsing():
  """The collector reads continuations, prompts, comments and chained commands the way a shell would."""
  block = ('$ pip install -e . && python -m scfa_jax.main --config=configs/demo.py \\\n'
           '    --workdir=/tmp/x  # a comment\n# only a comment\npython -m scfa_jax.bench train_step --depth=50\n')
  lines = shell_lines(block)
  assert lines == ['pip install -e . && python -m scfa_jax.main --config=configs/demo.py --workdir=/tmp/x',
                   'python -m scfa_jax.bench train_step --depth=50']
  assert commands_in(lines[0]) == [['python', '-m', 'scfa_jax.main', '--config=configs/demo.py', '--workdir=/tmp/x']]
  assert github_anchor('Beyond the paper: multi-scale views, `synthetic_detail`') == \
      'beyond-the-paper-multi-scale-views-synthetic_detail'


def test_the_embedding_file_snippet_runs(tmp_path, monkeypatch):
  """docs/inference.md's Python block that reads an embedding file runs on a file ``embed`` writes."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import identity  # pylint: disable=g-import-not-at-top
  from scfa_jax.inference import index  # pylint: disable=g-import-not-at-top
  blocks = [b for b in re.findall(r'^```python\n(.*?)^```', _read(os.path.join(ROOT, 'docs', 'inference.md')),
                                  re.M | re.S) if 'read_embeddings' in b]
  assert len(blocks) == 1
  monkeypatch.chdir(tmp_path)
  writer = index.Writer('clips.csv', identity.Identity(workdir='/w', step=225, config='c', views='1 clips + 0 local',
                                                       dim=3))
  for name in ('/home/me/clips/grow.mp4', '/home/me/a, b.mp4'):  # a comma in a name
    writer.write(name, '', np.arange(3, dtype=np.float32))
  writer.close()
  namespace = {}
  exec(blocks[0], namespace)  # pylint: disable=exec-used
  assert namespace['table'].names[1] == '/home/me/a, b.mp4' and namespace['features'].shape == (2, 3)
