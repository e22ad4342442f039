"""A user's paths -> the video files of a run, their keys and printable names, and a path OpenCV can open.

Why a module of its own: a real collection holds names that are not valid
UTF-8 (``caf\\xe9.mp4`` from a Latin-1 system), unreadable folders, deleted
files named in lists, and one folder spelled two ways (``clips`` and
``./clips/``). None of these may stop a run or mix up its output:

* listing (:func:`list_videos`) never raises for one bad entry: a missing path,
  an unreadable folder or file, a folder without videos are counted skips;
* a video's **key** (:func:`key`) is its resolved real path, so every spelling
  of one file is one video (what ``embed`` resumes by);
* a video's **printable name** (:func:`display`) is lossless: bytes that are
  not UTF-8 are written ``\\xNN`` and a backslash ``\\\\`` (:func:`undisplay`
  reverses it);
* OpenCV crashes (SIGSEGV) when handed a ``str`` path that is not valid UTF-8,
  so :func:`openable` hands it a temporary ASCII symlink to such a file instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import tempfile
from typing import Iterable, Sequence

from scfa_jax import errors
from scfa_jax import storage
from scfa_jax.datasets import video_io

_ESCAPE = re.compile(r'\\(\\|x[0-9a-fA-F]{2})')


def display(path: str | bytes | os.PathLike) -> str:
  """A printable, lossless name of ``path``: non-UTF-8 bytes, CR and LF as ``\\xNN``, a backslash doubled."""
  raw = os.fsencode(path).replace(b'\\', b'\\\\').replace(b'\n', b'\\x0a').replace(b'\r', b'\\x0d')
  return raw.decode('utf-8', 'backslashreplace')


def undisplay(name: str) -> str:
  """The path :func:`display` printed (as a ``str`` with surrogate escapes, as ``os.listdir`` gives it)."""
  def byte(m: re.Match) -> str:
    if m.group(1) == '\\':
      return '\\'
    value = int(m.group(1)[1:], 16)
    return chr(value if value < 0x80 else 0xdc00 + value)  # os.fsdecode's surrogate escape of a byte

  return _ESCAPE.sub(byte, name)


def key(path: str | os.PathLike) -> str:
  """The identity of a video file however its path is spelled: its resolved real path, printable.

  An object-storage address (``gs://...``, ``s3://...``) has no other spelling
  to resolve: it is its own key.
  """
  path = os.fspath(path)
  if storage.is_remote(path):
    return path
  return display(os.path.realpath(path))


def is_utf8(path: str | os.PathLike) -> bool:
  try:
    os.fsencode(path).decode('utf-8')
    return True
  except UnicodeDecodeError:
    return False


@dataclasses.dataclass
class Listing:
  """The video files a run's arguments name, in order, and the entries skipped (name, reason)."""

  videos: list[str] = dataclasses.field(default_factory=list)
  skipped: list[tuple[str, Exception]] = dataclasses.field(default_factory=list)


class UnreadableError(OSError):
  """An entry of the arguments that cannot be read: missing, permission denied, a folder without videos."""


def _walk(folder: str, listing: Listing) -> list[str]:
  """The video files under ``folder`` (sorted); folders that cannot be listed are skipped and counted."""
  def failed(e: OSError) -> None:
    listing.skipped.append((e.filename or folder, UnreadableError(f'cannot list this folder ({e.strerror}).')))

  found = []
  for root, _, names in os.walk(folder, onerror=failed):
    found.extend(os.path.join(root, n) for n in names if video_io.is_video_file(n))
  return sorted(found)


def _file(path: str) -> Exception | None:
  """Why the file ``path`` cannot be read, or None."""
  if not os.access(path, os.R_OK):
    return UnreadableError('permission denied (cannot read it); fix its permissions, e.g. chmod a+r.')
  return None


def list_videos(entries: Iterable[str | os.PathLike]) -> Listing:
  """Expands folders (recursively, sorted) into their video files; files are kept as given.

  Nothing raises for one entry: a path that does not exist, a folder or file
  that cannot be read, a folder holding no video are skipped with the reason.
  Each video appears once (by :func:`key`) in the order first met.
  """
  listing, seen = Listing(), set()
  for entry in map(os.fspath, entries):
    if os.path.isdir(entry):
      before = len(listing.skipped)
      inside = _walk(entry, listing)
      if not inside and len(listing.skipped) == before:
        listing.skipped.append((entry, UnreadableError(
            f'no video file in this folder (looked for {", ".join(video_io.VIDEO_EXTENSIONS)}).')))
      candidates = inside
    elif os.path.isfile(entry):
      candidates = [entry]
    else:
      listing.skipped.append((entry, UnreadableError('no such file or folder.')))
      continue
    for path in candidates:
      problem = _file(path)
      if problem is not None:
        listing.skipped.append((path, problem))
      elif key(path) not in seen:
        seen.add(key(path))
        listing.videos.append(path)
  return listing


def read_list(path: str) -> list[str]:
  """A text file listing one video (or folder) per line, relative to the file; blank lines and ``#`` are ignored."""
  try:
    with open(path, encoding='utf-8', errors='surrogateescape') as f:
      entries = [line.strip() for line in f]
  except OSError as e:
    raise errors.BadFilesError(f'{display(path)}: cannot read this list of videos ({e.strerror}).') from None
  base = os.path.dirname(path)
  return [e if os.path.isabs(e) else os.path.join(base, e) for e in entries if e and not e.startswith('#')]


def expand(entries: Sequence[str]) -> list[str]:
  """Entries of ``--videos``: ``.txt`` files are read as lists (:func:`read_list`), the rest kept."""
  listed: list[str] = []
  for entry in entries:
    listed.extend(read_list(entry) if entry.endswith('.txt') and os.path.isfile(entry) else [entry])
  return listed


@contextlib.contextmanager
def openable(video):
  """``video`` as something OpenCV can be handed: a non-UTF-8 path becomes a temporary ASCII symlink to it.

  Errors raised inside (``errors.BadFilesError`` and its subclasses) name the
  user's path (:func:`display`), not the symlink. Anything but a path passes through.
  """
  if not isinstance(video, (str, bytes, os.PathLike)):
    yield video
    return
  from scfa_jax.inference import video as video_lib  # pylint: disable=g-import-not-at-top
  path = os.fsdecode(video)
  if os.path.isfile(path) and not os.access(path, os.R_OK):
    raise video_lib.BadVideoError(f'{display(path)}: permission denied (cannot read it); fix its permissions.')
  if is_utf8(path):
    yield path
    return
  folder = tempfile.mkdtemp(prefix='scfa_video_')
  extension = os.path.splitext(path)[1]
  alias = os.path.join(folder, 'video' + (extension if is_utf8(extension) else ''))
  try:
    os.symlink(os.path.abspath(path), alias)
    try:
      yield alias
    except video_lib.BadVideoError as e:
      raise type(e)(str(e).replace(alias, display(path))) from None
  finally:
    shutil.rmtree(folder, ignore_errors=True)


def output_names(videos: Sequence[str]) -> list[str]:
  """A distinct relative name (no extension) per video, for files written per input (timelines).

  Folders below the inputs' common folder are kept (``a/clip``, ``b/clip``),
  so two inputs never share an output; where two files differ only by their
  extension, the extension stays in the name (``clip.avi``, ``clip.mp4``).
  """
  real = [os.path.realpath(v) for v in videos]
  if not real:
    return []
  common = os.path.commonpath([os.path.dirname(r) for r in real])
  relative = [os.path.relpath(r, common) for r in real]
  stems = [os.path.splitext(r)[0] for r in relative]
  clashes = {s for s in stems if stems.count(s) > 1}
  return [display(rel if stem in clashes else stem) for rel, stem in zip(relative, stems)]



def nothing_found(listing: Listing) -> Exception:
  """The one-line error of a run whose arguments name no readable video (``video.NoVideosError``)."""
  from scfa_jax.inference import video as video_lib  # pylint: disable=g-import-not-at-top
  reasons = [f'{display(name)}: {error}' for name, error in listing.skipped[:3]]
  more = f' (and {len(listing.skipped) - 3} more)' if len(listing.skipped) > 3 else ''
  return video_lib.NoVideosError('; '.join(reasons) + more if reasons else 'No video file or folder given.')
