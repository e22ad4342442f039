"""Shared fixtures: a tiny prepared synthetic_motion dataset and a tiny training config.

Also what makes the suite fast on 2 cores, all set here before JAX is imported so
that the pytest-xdist workers and every subprocess a test starts inherit it:
one XLA compilation cache for the whole run, so the many short runs of the same
tiny programs compile once (tests whose processes must not share it, gloo
multi-process runs, remove ``CACHE_ENV`` from their subprocess environment),
no LLVM optimisation of the compiled code, and XLA:CPU's faster-compiling elemental
emitters (``host_devices`` keeps them in a subprocess with simulated devices). The xdist hooks below hand out the
longest work units first and keep the users of ``evaluated_workdir`` on one worker.
"""

import atexit
import os
import shutil
import tempfile

CACHE_ENV = ('JAX_COMPILATION_CACHE_DIR', 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS',
             'JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES')
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:  # the first process of the run (xdist workers inherit it)
  _CACHE_DIR = tempfile.mkdtemp(prefix='scfa_tests_jax_cache_')
  atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)
  os.environ.update(dict(zip(CACHE_ENV, (_CACHE_DIR, '0', '0'))))

# The suite compiles hundreds of tiny programs and runs each for a few steps, so LLVM's optimisation of the
# generated code cost more than it saved (tests/test_train.py: 83 s of CPU -> 47 s). HLO passes (fusion, SPMD
# partitioning, what the compiled-program tests read) still run. JAX_DISABLE_MOST_OPTIMIZATIONS=0 restores it.
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')

# XLA:CPU's fusion emitters (jaxlib 0.10's default) compile the tests' tiny programs about twice as slowly
# as its older elemental emitters (a width-4 ResNet-10 train step on 8 devices: 7.6 s -> 3.7 s; the CPU time of
# tests/test_train.py 105 s -> 82 s) and the programs run a few steps. Added only on the jaxlib releases it was
# measured on, because XLA aborts the process on a flag it does not know.
TEST_XLA_FLAG = '--xla_cpu_use_fusion_emitters=false'
TEST_XLA_FLAG_JAXLIB = ('0.10.',)


def _with_test_xla_flag(xla_flags: str) -> str:
  import jaxlib  # pylint: disable=g-import-not-at-top  # the version only: starts no backend
  if TEST_XLA_FLAG.split('=')[0] in xla_flags or not jaxlib.__version__.startswith(TEST_XLA_FLAG_JAXLIB):
    return xla_flags
  return f'{xla_flags} {TEST_XLA_FLAG}'.strip()


os.environ['XLA_FLAGS'] = _with_test_xla_flag(os.environ.get('XLA_FLAGS', ''))


def host_devices(count: int) -> str:
  """``XLA_FLAGS`` for a subprocess with ``count`` simulated CPU devices, keeping the suite's own XLA flags."""
  return f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}".strip()

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import ml_collections  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

from scfa_jax import config as base_config

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '..', 'shared')


@pytest.fixture(scope='session', autouse=True)
def compilation_cache():
  """Reuses XLA executables across the many short runs of the test session (and its subprocesses)."""
  jax.config.update('jax_compilation_cache_dir', os.environ['JAX_COMPILATION_CACHE_DIR'])
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def without_compilation_cache(env: dict[str, str]) -> dict[str, str]:
  """``env`` minus the shared cache: gloo's context set-up timed out when two processes shared one."""
  return {k: v for k, v in env.items() if k not in CACHE_ENV}


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory) -> str:
  """A TFDS data_dir holding synthetic_motion/tiny (6 classes, 24 train + 12 test clips)."""
  from scfa_jax.datasets.synthetic_motion import synthetic_motion  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  synthetic_motion.SyntheticMotion(config='tiny', data_dir=data_dir).download_and_prepare()
  return data_dir


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config) -> int:  # pylint: disable=unused-argument
  """``-n auto`` (pyproject's addopts): one test worker per core, at most 4 (each holds JAX and TensorFlow)."""
  return max(1, min(4, len(os.sched_getaffinity(0))))


SLOW_DEFAULT_SECONDS = 10  # what a test marked plainly @pytest.mark.slow is taken to cost
QUICK_TEST_SECONDS = 0.5  # what an unmarked test is taken to cost
# Modules that read the session's ``evaluated_workdir``: one xdist work unit, so one worker trains it once.
EVALUATED_WORKDIR_USERS = ('test_evaluation_run.py', 'test_inference.py', 'test_inference_tools.py',
                           'test_inference_bad_input.py', 'test_serve.py', 'test_beam_embed.py')


def _expected_seconds(item: pytest.Item) -> float:
  marker = item.get_closest_marker('slow')
  return QUICK_TEST_SECONDS if marker is None else float(marker.kwargs.get('seconds', SLOW_DEFAULT_SECONDS))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
  """Longest work units first (by their tests' ``slow(seconds=...)``), so xdist's workers finish together.

  ``--dist loadscope`` hands out whole work units (modules, see
  :func:`work_unit`) in collection order (pyproject's ``--no-loadscope-reorder``
  keeps this order instead of xdist's count of tests); starting the
  two-process run or the preemption module last would leave one worker busy
  alone at the end. Order inside a module is kept.
  """
  unit = {item.nodeid: work_unit(item.nodeid) for item in items}
  cost: dict[str, float] = {}
  for item in items:
    cost[unit[item.nodeid]] = cost.get(unit[item.nodeid], 0.0) + _expected_seconds(item)
  first_seen = {name: i for i, name in reversed(list(enumerate(unit[item.nodeid] for item in items)))}
  items.sort(key=lambda item: (-cost[unit[item.nodeid]], first_seen[unit[item.nodeid]]))


def work_unit(nodeid: str) -> str:
  """The xdist work unit of a test: its module, except that the ``evaluated_workdir`` users share one."""
  module = nodeid.split('::', 1)[0]
  return 'evaluated_workdir' if os.path.basename(module) in EVALUATED_WORKDIR_USERS else module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
  """``--dist loadscope`` with :func:`work_unit`'s units: a session fixture is then built by one worker only."""
  if config.getvalue('dist') != 'loadscope':
    return None
  from xdist.scheduler import LoadScopeScheduling  # pylint: disable=g-import-not-at-top

  class WorkUnitScheduling(LoadScopeScheduling):

    def _split_scope(self, nodeid: str) -> str:
      return work_unit(nodeid)

  return WorkUnitScheduling(config, log)


def make_tiny_config(data_dir: str):
  """A run that compiles and trains in seconds: ResNet-10 at width 4 on 2x2 grids of 8 px tiles."""
  config = base_config.get_config()
  config.data.update(name='synthetic_motion', builder_config='tiny', data_dir=data_dir, grid_rows=2, grid_cols=2,
                     tile_size=8, shuffle_buffer=64, preprocessing='imagenet')
  config.model.update(depth=10, width=4, proj_hidden_dim=16, proj_dim=8)
  config.optim.update(learning_rate=3e-3, warmup_epochs=0.5)
  config.train.update(batch_size=8, num_epochs=2, log_every_steps=1)
  config.ckpt.update(every_steps=2, max_to_keep=2)
  # No figures: matplotlib and t-SNE took 7 of a tiny evaluated run's 27 s. Tests that read figures ask for them.
  config.eval.update(batch_size=8, knn_k=3, plots=False)
  return config


def override(config: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """``config`` with ``overrides`` set ({'data.name': 'hmdb51'}: keys dotted as after ``--config.``)."""
  for key, value in overrides.items():
    *sections, field = key.split('.')
    node = config
    for section in sections:
      node = node[section]
    node[field] = value
  return config


def config_file(name: str, overrides: dict) -> ml_collections.ConfigDict:
  """``configs/<name>.py`` with ``overrides`` (see :func:`override`)."""
  from scfa_jax import notebook  # pylint: disable=g-import-not-at-top
  return override(notebook.load_config(name), overrides)


@pytest.fixture
def tiny_config(tiny_data_dir):
  return make_tiny_config(tiny_data_dir)


@pytest.fixture(scope='session')
def evaluated_workdir(tiny_data_dir, tmp_path_factory):
  """(config, workdir, results) of one tiny run, trained once per test run for evaluation and inference tests.

  Once per run, not once per xdist worker: its users are one work unit (:func:`work_unit`).

  6 SupCon steps, every protocol with 2 test views, a 3-step fine-tune, figures, and the saved heads.
  test_evaluation_run.py's last test evaluates it again with another fine-tune (results.json and heads
  then describe that one); other users read results.json from disk rather than the returned dict.
  """
  from scfa_jax.training import train  # pylint: disable=g-import-not-at-top
  config = make_tiny_config(tiny_data_dir)
  config.eval.update(num_test_clips=2, finetune_epochs=1, finetune_learning_rate=1e-3, plots=True)
  workdir = str(tmp_path_factory.mktemp('evaluation') / 'run')
  results = train.train_and_evaluate(config, workdir)
  return config, workdir, results
