"""Finds the files a user downloaded by hand, and extracts the archives among them.

A manual folder may hold the archives as downloaded, the folders they extract
to, or those folders one level down (``manual_dir/hmdb51/...``); builders look
in the folder itself and in its immediate subfolders.

TFDS's download manager extracts zip and tar(.gz) archives itself
(``dl_manager.extract``, cached under ``<download_dir>/extracted``). It cannot
read RAR, in which HMDB51 and UCF101 are distributed: RAR archives are read
with libarchive through the ``libarchive-c`` package, which needs the
libarchive shared library (Debian/Ubuntu: ``libarchive13``). Every extraction
goes to a ``.incomplete`` folder that is renamed only when complete, so an
interrupted build starts the archive again and a finished one is reused.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
from typing import Any

import tensorflow_datasets as tfds

from scfa_jax import errors

RAR_BACKEND_HINT = (
    'Reading .rar archives needs libarchive: `pip install libarchive-c` plus the libarchive library '
    '(Debian/Ubuntu: `apt-get install libarchive13`; macOS: `brew install libarchive`). Alternatively '
    'extract the archives yourself (Debian: `apt-get install unar`, then `unar FILE.rar`) and put the '
    'extracted folders in the manual folder instead of the .rar files.')


def manual_dir(dl_manager: tfds.download.DownloadManager, dataset: str, instructions: str) -> pathlib.Path:
  """The manual folder of ``dl_manager``, or an error that says how to provide it."""
  try:
    return pathlib.Path(os.fspath(dl_manager.manual_dir))
  except AssertionError as e:
    reason = str(e).split('. ')[0]  # TFDS' first sentence names the folder it looked in.
    raise errors.MissingFilesError(
        f'{dataset} is built from files you download by hand, and there are none to read ({reason}). Set '
        f'--config.data.manual_dir (or --manual_dir of python -m scfa_jax.tools.build_dataset) to the folder '
        f'that holds them.\n{instructions}') from None


def search_roots(folder: pathlib.Path) -> list[pathlib.Path]:
  """``folder`` and its immediate, non-hidden subfolders, in a fixed order."""
  subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith('.'))
  return [folder] + subfolders


def find(folder: pathlib.Path, name: str, *, is_dir: bool) -> pathlib.Path | None:
  """The first ``name`` (a folder if ``is_dir``, else a file) in ``search_roots(folder)``."""
  for root in search_roots(folder):
    candidate = root / name
    if (candidate.is_dir() if is_dir else candidate.is_file()):
      return candidate
  return None


def _import_libarchive() -> Any:
  try:
    import libarchive  # pylint: disable=g-import-not-at-top
    libarchive.ffi.version_number()  # fails here if the shared library is missing
  except (ImportError, OSError, AttributeError) as e:
    raise errors.MissingDependencyError(f'Cannot read .rar archives: {e!r}. {RAR_BACKEND_HINT}') from e
  return libarchive


def _relative_member_path(name: str, archive: pathlib.Path) -> pathlib.PurePosixPath:
  parts = [p for p in name.replace('\\', '/').split('/') if p not in ('', '.')]
  if not parts or '..' in parts:
    raise errors.BadFilesError(f'{archive}: refusing to extract the member {name!r} (empty or leaves the folder).')
  return pathlib.PurePosixPath(*parts)


def extract_rar(archive: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
  """Extracts a RAR archive into ``dest`` unless a finished extraction is there.

  Args:
    archive: The .rar file.
    dest: Folder to create; its contents mirror the archive's paths.

  Returns:
    ``dest``.

  Raises:
    RuntimeError: libarchive is not available (the message says what to install).
    ValueError: the archive is corrupt or incomplete.
  """
  if dest.is_dir():
    return dest
  libarchive = _import_libarchive()
  tmp = dest.with_name(dest.name + '.incomplete')
  if tmp.exists():
    shutil.rmtree(tmp)  # Left by an interrupted build.
  tmp.mkdir(parents=True)
  logging.info('Extracting %s to %s', archive, dest)
  try:
    with libarchive.file_reader(os.fspath(archive)) as entries:
      for entry in entries:
        target = tmp / _relative_member_path(entry.pathname, archive)
        if entry.isdir:
          target.mkdir(parents=True, exist_ok=True)
        elif entry.isfile:
          target.parent.mkdir(parents=True, exist_ok=True)
          with open(target, 'wb') as f:
            for block in entry.get_blocks():
              f.write(block)
  except libarchive.ArchiveError as e:
    shutil.rmtree(tmp, ignore_errors=True)
    raise errors.BadFilesError(
        f'{archive}: cannot be extracted ({e}). The download may be incomplete or corrupt: compare its '
        f'size with the download page and download it again, or extract it with another tool and put '
        f'the extracted folder in the manual folder instead.') from e
  tmp.rename(dest)
  return dest


def extract(dl_manager: tfds.download.DownloadManager, archive: pathlib.Path) -> pathlib.Path:
  """Extracts ``archive`` once (RAR with libarchive, anything else with TFDS) and returns the folder."""
  if archive.name.lower().endswith('.rar'):
    dest = pathlib.Path(os.fspath(dl_manager.download_dir)) / 'extracted' / f'RAR.{archive.name}'
    return extract_rar(archive, dest)
  return pathlib.Path(os.fspath(dl_manager.extract(archive)))


def find_or_extract(dl_manager: tfds.download.DownloadManager, root: pathlib.Path, folder: str, archive: str,
                    instructions: str) -> pathlib.Path:
  """The folder ``folder`` found in ``root``, else the one inside the archive ``archive`` found there.

  Raises:
    FileNotFoundError: neither is there, or the archive does not hold ``folder``.
  """
  found = find(root, folder, is_dir=True)
  if found:
    return found
  archive_path = find(root, archive, is_dir=False)
  if not archive_path:
    raise errors.MissingFilesError(f'{root}: neither {folder}/ nor {archive} is in this folder or its immediate '
                                   f'subfolders.\n{instructions}')
  found = find(extract(dl_manager, archive_path), folder, is_dir=True)
  if not found:
    raise errors.MissingFilesError(f'{archive_path}: holds no {folder}/ folder; is it the official {archive}?')
  return found


def index_videos(root: pathlib.Path) -> dict[str, pathlib.Path]:
  """File stem -> path of every video below ``root`` (flat or in per-class/per-split folders).

  Downloads of Kinetics and SSv2 name each clip uniquely, so builders find a
  clip by its stem wherever the download script put it. When a stem occurs
  twice, the first path in sorted order wins and the others are logged.
  """
  from scfa_jax.datasets import video_io  # pylint: disable=g-import-not-at-top  # (video_io imports OpenCV)
  index: dict[str, pathlib.Path] = {}
  duplicates = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith('.') and not d.endswith('.incomplete'))
    for name in sorted(filenames):
      if video_io.is_video_file(name):
        path = pathlib.Path(dirpath) / name
        stem = path.stem
        if stem in index:
          duplicates.append(path)
        else:
          index[stem] = path
  if duplicates:
    logging.warning('%s: %d videos share a name with an earlier one and are not used, e.g. %s', root,
                    len(duplicates), ', '.join(map(str, duplicates[:5])))
  return index


def find_shallow(root: pathlib.Path, matches, depth: int = 2) -> list[pathlib.Path]:
  """Files at most ``depth`` folders below ``root`` whose name satisfies ``matches(name)``, sorted."""
  found, level = [], [root]
  for _ in range(depth + 1):
    entries = [p for folder in level for p in folder.iterdir()]  # each folder listed once
    found += [p for p in entries if p.is_file() and matches(p.name)]
    level = [p for p in entries if p.is_dir() and not p.name.startswith('.')]
  return sorted(found)
