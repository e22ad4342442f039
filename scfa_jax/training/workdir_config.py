"""A workdir remembers its config: ``<workdir>/config.json``, and what may change between runs.

A resumed run (or ``--mode=eval``) with settings that change what is trained
would silently mix two experiments in one set of checkpoints and report
results for neither. So the first run writes the full resolved config, and
every later run compares against it: fields that shape the training must
match, run-control fields (evaluation, logging and checkpoint intervals,
``train.max_steps``, data paths) may change. ``--allow_config_change``
overrides; the change is then appended to ``config_changes.json``.

:func:`diff_configs` is pure; :func:`check` does the file I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
from typing import Any, Mapping

import ml_collections

from scfa_jax import config as base_config
from scfa_jax import errors

CONFIG_FILE = 'config.json'
CHANGES_FILE = 'config_changes.json'

# Fields that do not change what is trained: every eval.* and ckpt.* field, and these.
FREE_SECTIONS = ('eval.', 'ckpt.')
FREE_FIELDS = frozenset({
    'train.log_every_steps', 'train.max_steps',  # max_steps stops early; the schedule spans num_epochs
    'train.parallelism',  # pmap or jit: the same step, compiled differently
    'train.skip_nonfinite_steps',  # turned on to get past a non-finite step when resuming
    'data.data_dir', 'data.manual_dir',  # where the same dataset lives
    'data.prefetch_to_device', 'data.cache',  # speed only
    'data.max_bad_fraction',  # only read while building the dataset, which is then fixed
})
# Only the fine-tune reads them when pre-training has no classifier; fine-tunes are keyed by them.
HEAD_FIELD = 'model.classifier_hidden_dim'
CLASSIFIER_INIT_FIELD = 'model.classifier_init'
LABEL_FRACTION_FIELD = 'data.label_fraction'
_ABSENT = '<absent>'


@dataclasses.dataclass(frozen=True)
class Change:
  """One field whose value differs from the one the workdir was trained with."""

  key: str
  old: Any
  new: Any

  def __str__(self) -> str:
    return f'  config.{self.key}: {self.old!r} in the workdir, {self.new!r} now'


def flatten(config: ml_collections.ConfigDict | Mapping[str, Any]) -> dict[str, Any]:
  """{'train.batch_size': 64, ...} with JSON values (tuples as lists), so saved and live configs compare equal."""
  tree = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
  tree = json.loads(json.dumps(tree))
  flat = {}

  def walk(prefix: str, node: Any) -> None:
    if isinstance(node, dict):
      for key, value in node.items():
        walk(f'{prefix}{key}.', value)
    else:
      flat[prefix[:-1]] = node

  walk('', tree)
  return flat


def is_free(key: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
  """Whether ``key`` may differ between runs in one workdir (``old``/``new``: flat configs)."""
  if key.startswith(FREE_SECTIONS) or key in FREE_FIELDS:
    return True
  if key == LABEL_FRACTION_FIELD:  # a model that never read labels: only the probe, kNN and fine-tune read them
    return all(c.get('loss.name') == 'supcon' and c.get('loss.positives') == 'video' for c in (old, new))
  return key in (HEAD_FIELD, CLASSIFIER_INIT_FIELD) and old.get('loss.name') == new.get('loss.name') == 'supcon'


def diff_configs(old: Mapping[str, Any], new: Mapping[str, Any],
                 defaults: Mapping[str, Any] | None = None) -> list[Change]:
  """The training-relevant fields where ``new`` differs from ``old`` (both flat, as :func:`flatten`).

  A field only one side has (a newer or older scfa_jax) counts as its value in
  ``defaults`` (flat ``scfa_jax.config.get_config()``) when that has it.
  """
  if defaults is None:
    defaults = flatten(base_config.get_config())
  changes = []
  for key in sorted(set(old) | set(new)):
    if is_free(key, old, new):
      continue
    a = old.get(key, defaults.get(key, _ABSENT))
    b = new.get(key, defaults.get(key, _ABSENT))
    if a != b:
      changes.append(Change(key, a, b))
  return changes


def _write_json(path: str, value: Any) -> None:
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(value, f, indent=2, sort_keys=True)
    f.write('\n')
  os.replace(tmp, path)  # never a half-written config.json


def describe_mismatch(path: str, changes: list[Change]) -> str:
  """The exit-code-2 message: each differing field with both values, then the ways out."""
  return (f'{path} records different training settings ({len(changes)} field(s) differ):\n'
          + '\n'.join(str(c) for c in changes)
          + '\nPass the config this workdir was trained with, use a new --workdir, or add '
          '--allow_config_change to continue with the new values (recorded in '
          f'{os.path.join(os.path.dirname(path), CHANGES_FILE)}).')


def read(workdir: str) -> ml_collections.ConfigDict:
  """``<workdir>/config.json`` (which exists) as a ConfigDict; one line naming the file if it is not JSON."""
  path = os.path.join(workdir, CONFIG_FILE)
  try:
    with open(path) as f:
      return ml_collections.ConfigDict(json.load(f))
  except ValueError as e:
    raise errors.BadFilesError(f'{path}: not valid JSON ({e}); restore it from the run that wrote it.') from None


def refuse_before_imports(config: ml_collections.ConfigDict, workdir: str, *, allow_change: bool) -> None:
  """:func:`check`'s refusal, read-only, for ``main`` to give before seconds of TensorFlow, JAX and orbax imports.

  Only where :func:`check` is sure to refuse later: a local workdir whose ``config.json`` differs in training
  fields and that holds a finished checkpoint. Without orbax, "finished" is a step folder orbax has renamed into
  place (its name all digits; a save in progress is ``<step>.orbax-checkpoint-tmp-<time>``). Anything else
  (a bucket, no checkpoint yet, a change allowed) waits for :func:`check`, which asks orbax and writes.

  Raises:
    errors.ConfigError: as :func:`check`, with the same message.
    errors.BadFilesError: ``config.json`` is not JSON (as :func:`read`).
  """
  path = os.path.join(workdir, CONFIG_FILE)
  checkpoints = os.path.join(workdir, 'checkpoints')
  if allow_change or '://' in workdir or not os.path.isfile(path) or not os.path.isdir(checkpoints):
    return
  if not any(name.isdigit() for name in os.listdir(checkpoints)):
    return
  changes = diff_configs(flatten(read(workdir)), flatten(config))
  if changes:
    raise errors.ConfigError(describe_mismatch(path, changes))


def check(config: ml_collections.ConfigDict, workdir: str, *, trained: bool, allow_change: bool = False,
          mode: str = 'train', write: bool = True) -> list[Change]:
  """Compares ``config`` with ``<workdir>/config.json`` and records it.

  Args:
    config: the run's resolved config.
    workdir: the run's workdir (exists).
    trained: whether the workdir holds a checkpoint. Until it does, nothing was
      trained with the saved config, so it is simply replaced.
    allow_change: continue despite differing fields, recording the change.
    mode: 'train' or 'eval'. Only training rewrites ``config.json``; an
      allowed change in eval mode is recorded but leaves it as trained.
    write: whether this process writes files (process 0 of a multi-host run).

  Returns:
    The changes that were allowed (empty when the configs agree).

  Raises:
    errors.ConfigError: training-relevant fields differ and not ``allow_change``.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  new = flatten(config)
  if not trained or not os.path.exists(path):
    if trained:
      logging.warning('%s holds checkpoints but no %s (written by an older scfa_jax): recording this config; '
                      'it was not compared with the one the checkpoints were trained with.', workdir, CONFIG_FILE)
    if write and mode == 'train':
      _write_json(path, config.to_dict())
    return []
  changes = diff_configs(flatten(read(workdir)), new)
  if not changes:
    return []
  if not allow_change:
    raise errors.ConfigError(describe_mismatch(path, changes))
  logging.warning('--allow_config_change: continuing in %s with changed settings:\n%s', workdir,
                  '\n'.join(str(c) for c in changes))
  if write:
    record = {'time': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'), 'mode': mode,
              'changes': [{'key': c.key, 'old': c.old, 'new': c.new} for c in changes]}
    changes_path = os.path.join(workdir, CHANGES_FILE)
    history = []
    if os.path.exists(changes_path):
      with open(changes_path) as f:
        history = json.load(f)
    _write_json(changes_path, history + [record])
    if mode == 'train':
      _write_json(path, config.to_dict())
  return changes
