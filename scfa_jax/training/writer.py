"""The one metric writer of pre-training and fine-tuning: TensorBoard events, nothing on the console.

CLU's ``create_default_writer`` also logs every scalar, which printed each log
step twice (once by ``loop.Progress``, once by the writer) and dumped the whole
config as one line; the console lines come from ``loop.Progress`` and the
start-up summary instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax

from scfa_jax import startup

if TYPE_CHECKING:
  from clu import metric_writers


def create_writer(logdir: str) -> metric_writers.MetricWriter:
  """Asynchronous TensorBoard writer into ``logdir`` on process 0; a writer that drops everything elsewhere.

  CLU's writers import TensorBoard's plugins (seconds), so a run refused by a
  check before its first step does not pay for them; and they are imported
  without Keras (:func:`scfa_jax.startup.import_metric_writers`).
  """
  metric_writers = startup.import_metric_writers()  # pylint: disable=redefined-outer-name
  if jax.process_index() != 0:
    return metric_writers.MultiWriter([])
  return metric_writers.AsyncMultiWriter([metric_writers.SummaryWriter(logdir)])
