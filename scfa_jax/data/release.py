"""Letting go of a tf.data iterator without waiting for it.

With tf.data's autotuning on (``AUTOTUNE`` parallelism and prefetching, as
every pipeline here uses), an iterator's destructor waits for the autotuning
thread, which sleeps up to a minute between optimisations and is not woken
when the iterator is cancelled. After a long run the training iterator held
the program 28-42 s between the last step and evaluation (the CPU demo; 52 s
for a toy pipeline used for 90 s, 0.1 s after 5 s, 0 s with autotuning off).
The destructor releases the GIL, so on a daemon thread it costs nothing, and
a daemon thread does not hold up the program's exit. The wait comes with
use, not with an early stop: an iterator read to its end after 90 s took
50 s to destroy as well, so evaluation's passes over a split
(:func:`numpy_batches`) let go of theirs the same way.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator


def release_in_background(owned: list[Any]) -> threading.Thread:
  """Drops the references in ``owned`` (cleared) on a daemon thread; returns that thread.

  ``owned`` must hold the last references to the iterators: whatever still
  refers to one elsewhere (a local name, a generator's frame) keeps it, and its
  destructor then runs wherever that reference goes. So close the generators
  that wrap it first (their frames let go of what they read from).
  """
  thread = threading.Thread(target=owned.clear, name='release-tf-data-iterators', daemon=True)
  thread.start()
  return thread


def numpy_batches(dataset: Any) -> Iterator[Any]:
  """``dataset.as_numpy_iterator()``, whose iterator is let go on a daemon thread when iteration ends.

  That is at its end, at ``close()``, or when this generator is dropped (a
  ``break`` in the caller's loop, a ``return`` from inside it). A generator
  wrapping this one must be closed or dropped for this one to end.
  """
  iterator = dataset.as_numpy_iterator()
  try:
    yield from iterator
  finally:
    owned = [iterator]
    del iterator  # the frame's reference; the thread then holds the last one
    release_in_background(owned)
