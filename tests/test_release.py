"""A tf.data iterator is let go on a daemon thread: its destructor may wait up to a minute (scfa_jax/data/release.py)."""

import threading
import time

from scfa_jax.data import release


class _SlowToDestroy:
  """Stands in for a tf.data iterator whose destructor waits for its autotuning thread."""

  def __init__(self, log: list):
    self.log = log

  def __del__(self):
    time.sleep(1.0)
    self.log.append(threading.current_thread().name)


def test_the_destructor_runs_on_a_daemon_thread_and_the_caller_goes_on():
  log = []
  owned = [_SlowToDestroy(log)]
  start = time.perf_counter()
  thread = release.release_in_background(owned)
  assert time.perf_counter() - start < 0.5 and owned == [] and thread.daemon  # not waiting for the destructor
  thread.join(timeout=10)
  assert log == ['release-tf-data-iterators'], log


def test_training_hands_its_iterator_over_and_evaluation_follows(tiny_config, tmp_path, monkeypatch):
  """The train iterator reaches the release (the generator around it closed first), before evaluation starts."""
  from scfa_jax.evaluation import evaluate as evaluate_lib  # pylint: disable=g-import-not-at-top
  from scfa_jax.training import train  # pylint: disable=g-import-not-at-top
  events = []
  original_release, original_evaluate = release.release_in_background, evaluate_lib.evaluate

  def recording_release(owned):
    events.append(('release', [type(x).__name__ for x in owned]))
    return original_release(owned)

  def recording_evaluate(*args, **kwargs):
    events.append(('evaluate', None))
    return original_evaluate(*args, **kwargs)

  monkeypatch.setattr(release, 'release_in_background', recording_release)
  monkeypatch.setattr(evaluate_lib, 'evaluate', recording_evaluate)
  tiny_config.train.num_epochs = 1
  tiny_config.eval.update(num_test_clips=1, finetune_epochs=0, retrieval_ks=())
  train.train_and_evaluate(tiny_config, str(tmp_path / 'run'))
  assert events == [('release', ['NumpyIterator']), ('evaluate', None)], events
