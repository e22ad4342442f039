"""constraints.txt pins every dependency pyproject.toml declares, at a version pyproject.toml allows.

The README's install commands and CI (.ci/run) install with ``-c constraints.txt``
so that a new release on the package index cannot break a fresh install. A pin
that drifts out of pyproject's bounds (or a new dependency without a pin) would
make that guarantee silently partial; this test catches it.
"""

import os
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pins() -> dict[str, str]:
  pins = {}
  with open(os.path.join(ROOT, 'constraints.txt')) as f:
    for line in f:
      line = line.split('#', 1)[0].strip()
      if line:
        match = re.fullmatch(r'([A-Za-z0-9_.\-]+)==([^\s;]+)', line)
        assert match, f'constraints.txt: not a "name==version" pin: {line!r}'
        pins[canonicalize_name(match.group(1))] = match.group(2)
  return pins


def _requirements() -> list[Requirement]:
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    project = tomllib.load(f)['project']
  declared = list(project['dependencies'])
  for extra in project['optional-dependencies'].values():  # every extra, so each has a known-good install
    declared += extra
  return [r for r in map(Requirement, declared) if canonicalize_name(r.name) != canonicalize_name(project['name'])]


def test_every_dependency_is_pinned_within_its_bounds():
  pins = _pins()
  for requirement in _requirements():
    if requirement.marker is not None and not requirement.marker.evaluate():
      continue  # another platform's dependency
    name = canonicalize_name(requirement.name)
    assert name in pins, f'{requirement.name} is not pinned in constraints.txt: run .ci/freeze_constraints'
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f'constraints.txt pins {requirement.name}=={pins[name]}, outside pyproject.toml\'s {requirement}')
