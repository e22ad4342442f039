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


class _Dataset:
  """Stands in for a tf.data dataset: ``as_numpy_iterator`` yields 3 batches, then is slow to destroy."""

  def __init__(self, log: list):
    self.log = log

  def as_numpy_iterator(self):
    return _SlowIterator(self.log)


class _SlowIterator(_SlowToDestroy):

  def __init__(self, log: list):
    super().__init__(log)
    self.left = 3

  def __iter__(self):
    return self

  def __next__(self):
    if not self.left:
      raise StopIteration
    self.left -= 1
    return self.left


def _let_go_on_the_thread(log: list, use, batches=None) -> None:
  """``use(batches)`` (by default fresh ``numpy_batches`` logging to ``log``) returns at once; the thread destroys."""
  start = time.perf_counter()
  use(release.numpy_batches(_Dataset(log)) if batches is None else batches)
  assert time.perf_counter() - start < 0.5, 'waited for the destructor'
  for thread in threading.enumerate():
    if thread.name == 'release-tf-data-iterators':
      thread.join(timeout=10)
  assert log == ['release-tf-data-iterators'], log


def test_numpy_batches_read_to_the_end_let_go_of_the_iterator_on_a_thread():
  log = []
  _let_go_on_the_thread(log, lambda batches: [None for _ in batches])


def test_numpy_batches_left_early_let_go_of_the_iterator_on_a_thread():
  def leave_at_the_first(batches):
    for _ in batches:
      return  # the generator is dropped here, unfinished

  log = []
  _let_go_on_the_thread(log, leave_at_the_first)
  closed = []
  batches = release.numpy_batches(_Dataset(closed))
  next(batches)
  _let_go_on_the_thread(closed, lambda started: started.close(), batches)


def test_training_and_evaluation_hand_every_iterator_over(tiny_config, tmp_path, monkeypatch):
  """The train iterator reaches the release before evaluation starts; every pass of evaluation's follows."""
  from scfa_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
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

  def counting(create):
    def create_and_count(*args, **kwargs):
      events.append(('dataset', create.__name__))
      return create(*args, **kwargs)
    return create_and_count

  monkeypatch.setattr(release, 'release_in_background', recording_release)
  monkeypatch.setattr(evaluate_lib, 'evaluate', recording_evaluate)
  for name in ('create_train_dataset', 'create_eval_dataset'):
    monkeypatch.setattr(input_pipeline, name, counting(getattr(input_pipeline, name)))
  tiny_config.train.num_epochs = 1
  tiny_config.eval.update(num_test_clips=1, finetune_epochs=1, retrieval_ks=())
  train.train_and_evaluate(tiny_config, str(tmp_path / 'run'))
  first = events.index(('evaluate', None))
  assert events[:first] == [('dataset', 'create_train_dataset'), ('release', ['NumpyIterator'])], events
  during = events[first + 1:]
  made = [e for e in during if e[0] == 'dataset']
  assert ('dataset', 'create_train_dataset') in made and len(made) >= 3, during  # fine-tune, train and test splits
  assert during.count(('release', ['NumpyIterator'])) == len(made) == len(during) / 2, during
