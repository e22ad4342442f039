"""Local paths and object storage (``gs://``, ``s3://``, ...) behind one small set of calls.

Why a module of its own: several layers take paths that may be object-storage
addresses (a remote TFDS ``data_dir``, videos to embed on Beam workers, a
Parquet index in a bucket), and each must tell the two apart the same way.
Local paths go through ``os`` so that nothing imports TensorFlow for them (its
import alone costs seconds on a command's start-up); remote ones through
TensorFlow's ``gfile``, which reads every scheme TensorFlow's file systems know.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from typing import IO, Iterator, Union

_SCHEME = re.compile(r'[A-Za-z][A-Za-z0-9+.-]*://')


def is_remote(path: Union[str, os.PathLike]) -> bool:
  """Whether ``path`` is an address with a URL scheme (``gs://bucket/x``), not a local path."""
  return _SCHEME.match(os.fspath(path)) is not None


def isdir(path: str) -> bool:
  if is_remote(path):
    return _gfile().isdir(path)
  return os.path.isdir(path)


def exists(path: str) -> bool:
  if is_remote(path):
    return _gfile().exists(path)
  return os.path.exists(path)


def listdir(path: str) -> list[str]:
  """Entry names of a folder (object storage's trailing ``/`` on sub-folders removed)."""
  if is_remote(path):
    return [p.rstrip('/') for p in _gfile().listdir(path)]
  return os.listdir(path)


@contextlib.contextmanager
def reading(path: str) -> Iterator[Union[str, IO[bytes]]]:
  """What a reader that takes a path or a file object (pyarrow) can read: a local path itself, else an open file.

  The remote file is a standard seekable binary stream, read on demand (a
  Parquet reader fetches the footer and the columns it needs, not the whole
  file), and closed on leaving. TensorFlow's ``GFile`` itself lacks the
  ``closed`` attribute that pyarrow checks, so it is wrapped.
  """
  if not is_remote(path):
    yield path
    return
  with io.BufferedReader(_GFileStream(_gfile().GFile(path, 'rb')), buffer_size=1 << 20) as stream:
    yield stream


class _GFileStream(io.RawIOBase):
  """A ``GFile`` opened for reading as an ``io`` raw stream."""

  def __init__(self, gfile):
    super().__init__()
    self._file = gfile

  def readable(self) -> bool:
    return True

  def seekable(self) -> bool:
    return True

  def readinto(self, buffer) -> int:
    data = self._file.read(len(buffer))
    buffer[:len(data)] = data
    return len(data)

  def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
    if whence == io.SEEK_END:
      offset, whence = self._file.size() + offset, io.SEEK_SET
    elif whence == io.SEEK_CUR:
      offset, whence = self._file.tell() + offset, io.SEEK_SET
    self._file.seek(offset)
    return self._file.tell()

  def tell(self) -> int:
    return self._file.tell()

  def close(self) -> None:
    if not self.closed:
      self._file.close()
    super().close()


def _gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile
