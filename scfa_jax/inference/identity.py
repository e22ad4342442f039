"""Which model wrote an embedding file: its identity, and the one-line refusal of another model's file.

Embeddings of two models (two workdirs, two steps of one workdir, or one step
with other test-time views) live in different spaces: one file holding both
searches as if they were comparable. Every embedding file therefore records
the identity of the model that wrote it, and ``embed`` refuses to append to,
and ``search`` to query, a file of another model. Kept apart from the file
format (CSV today, ``inference.index``) so that any format can store the same
dict (e.g. a Parquet file's key-value metadata).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Optional

import ml_collections

from scfa_jax import errors

FORMAT = 'scfa_jax embeddings 2'  # 1: the CSV of the first release, without identity


class OtherModelError(errors.BadFilesError):
  """An embedding file written by another model than the one asked to extend or query it."""


@dataclasses.dataclass(frozen=True)
class Identity:
  """What makes two embeddings comparable. ``dim`` is None before the model is loaded (unknown yet)."""

  workdir: str  # resolved real path
  step: int
  config: str  # sha256 (12 hex digits) of config.json, keys sorted
  views: str  # test-time views per video: '<clips> clips + <local> local'
  dim: Optional[int] = None

  def to_json(self) -> dict[str, Any]:
    return {'format': FORMAT, **dataclasses.asdict(self)}

  @classmethod
  def from_json(cls, data: dict[str, Any]) -> 'Identity':
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in fields})

  def describe(self) -> str:
    dim = f', {self.dim} dims' if self.dim is not None else ''
    return f'{self.workdir} step {self.step} (config {self.config}, {self.views}{dim})'


def fingerprint(config: ml_collections.ConfigDict) -> str:
  text = json.dumps(config.to_dict(), sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def of_model(workdir: str, config: ml_collections.ConfigDict, step: int, *, dim: Optional[int] = None,
             views: Optional[tuple[int, int]] = None) -> Identity:
  """``views``: (clips, local views) per video; default the config's test-time views."""
  clips, local = views or (int(config.eval.num_test_clips), int(config.eval.get('local_views', 0)))
  return Identity(workdir=os.path.realpath(workdir) if workdir else '', step=int(step), config=fingerprint(config),
                  views=f'{clips} clips + {local} local', dim=dim)


def of_predictor(predictor, dim: Optional[int] = None) -> Identity:
  """The identity of an ``inference.Predictor``'s encoder (a Predictor built from frames: workdir '')."""
  return of_model(predictor.workdir or '', predictor.config, predictor.encoder.step, dim=dim,
                  views=(predictor.views.num_clips, predictor.views.num_local_views))


def check(path: str, written: Optional[Identity], wanted: Identity, *, fix: str) -> None:
  """Raises ``OtherModelError`` (one line: the file, both identities, ``fix``) unless ``written`` is ``wanted``.

  A ``dim`` of None on either side is not compared (not known before loading).
  """
  if written is None:
    raise OtherModelError(f'{path} does not record which model wrote it (an embedding file of an earlier '
                          f'version); this model is {wanted.describe()}: {fix}')
  same = dataclasses.replace(written, dim=None) == dataclasses.replace(wanted, dim=None) and (
      written.dim is None or wanted.dim is None or written.dim == wanted.dim)
  if not same:
    raise OtherModelError(f'{path} holds embeddings of {written.describe()}, not of {wanted.describe()}: {fix}')
