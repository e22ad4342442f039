"""Mistakes a user can fix, as opposed to bugs: ``main`` prints them in one line, without a traceback.

Every exception here says what is wrong (the config field or the file) and
how to fix it; ``exit_code`` is what ``python -m scfa_jax.main`` exits with:
2 for usage (a flag or config value), 1 for files on disk. They also subclass
the builtin a caller would expect (``ValueError``, ``FileNotFoundError``, ...),
so library code and notebooks that catch those keep working. Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
  """Base of the mistakes ``main`` reports in one line (or a short block listing files)."""

  exit_code: int = 1


class ConfigError(UserError, ValueError):
  """A config field or flag whose value cannot work; the message names the field and what it accepts."""

  exit_code = 2


class MissingFilesError(UserError, FileNotFoundError):
  """A file or folder the run needs is absent: a manual download, a split list, ported weights."""


class BadFilesError(UserError, ValueError):
  """A file is there but unusable: malformed, truncated, or for another model."""


class MissingDependencyError(UserError, RuntimeError):
  """A library or system package the requested work needs is not installed; the message says which."""
