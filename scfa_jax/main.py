r"""Trains and evaluates SCFA: ``python -m scfa_jax.main --config=configs/hmdb.py --workdir=/tmp/hmdb``.

``--mode=eval`` evaluates the latest checkpoint of ``--workdir`` without
training (pass the config it was trained with; ``--config.eval.*`` may change).

Any config field can be overridden: ``--config.train.num_epochs=3``. Unknown
keys, wrong types and values that cannot work are rejected (exit code 2)
before anything runs, as is a config whose training settings differ from the
workdir's ``config.json`` (unless ``--allow_config_change``). Mistakes a user
can fix (``scfa_jax.errors.UserError``) print one line, or a short block
listing files, without a traceback. The logic lives in importable libraries
(``scfa_jax.training.train``) so that notebooks call the same code.
"""

import sys
from typing import NoReturn

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from scfa_jax import config_validation
from scfa_jax import console
from scfa_jax import errors
from scfa_jax.training import distributed
from scfa_jax.training import init_from
from scfa_jax.training import workdir_config

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, TensorBoard events and results.json.')
flags.mark_flag_as_required('workdir')
flags.DEFINE_enum('mode', 'train', ['train', 'eval'],
                  'train: train (resuming from --workdir), then evaluate; eval: evaluate the latest checkpoint only.')
flags.DEFINE_bool('distributed', False, 'Join a multi-host run, finding the cluster from the environment: set it '
                  'on every host of a TPU pod slice or a SLURM job (docs/multihost.md).')
flags.DEFINE_string('coordinator_address', None, 'Multi-host by hand: HOST:PORT of process 0, the same on every '
                    'process (with --num_processes and --process_id; implies --distributed).')
flags.DEFINE_integer('num_processes', None, 'Multi-host by hand: the number of processes.')
flags.DEFINE_integer('process_id', None, 'Multi-host by hand: this process, 0..num_processes-1.')
flags.register_multi_flags_validator(
    distributed.EXPLICIT_FLAGS, lambda f: distributed.check_flags(**f) or True,
    'a hand-launched multi-host run needs --coordinator_address, --num_processes and --process_id together')
flags.DEFINE_bool('allow_config_change', False, 'Continue in a --workdir although config fields that change '
                  'training differ from its config.json; the change is recorded in <workdir>/config_changes.json.')
config_flags.DEFINE_config_file('config', None, 'Config file, e.g. configs/demo.py.', lock_config=True)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, but a bad flag exits with status 2 (usage error) and a one-line reason.

  Reading ``FLAGS.config`` here loads the config file and applies the overrides,
  so a missing file, an unknown key or a wrong type stops before any work.
  """
  try:
    remaining = FLAGS(argv)
    if FLAGS.config is None:
      raise flags.IllegalFlagValueError('--config is required, e.g. --config=configs/demo.py')
    FLAGS.config.keys()  # A config file that failed to load raises only on first use.
    return remaining
  except (flags.Error, KeyError, AttributeError, TypeError, ValueError, OSError) as e:
    print(f'{argv[0]}: error: {e}\nPass --helpfull to list the flags; config fields are in scfa_jax/config.py.',
          file=sys.stderr)
    sys.exit(2)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  # Before TensorFlow is imported: its C++ log level is read once, at import.
  console.configure(verbose=console.is_verbose(FLAGS.verbosity), filter_native_stderr=True)
  try:  # before seconds of TensorFlow and JAX imports: the config's values (batch sizes wait for the device
    # count), model.init_from's JSON, and the workdir's config.json (all checked again once the run starts)
    config_validation.validate(FLAGS.config, device_count=None)
    init_from.check(FLAGS.config)
    workdir_config.refuse_before_imports(FLAGS.config, FLAGS.workdir, allow_change=FLAGS.allow_config_change)
  except errors.UserError as e:
    _refuse(e)
  from scfa_jax import startup as quick_start  # pylint: disable=g-import-not-at-top
  tf = quick_start.import_tensorflow()  # without its eager import of all of Keras (seconds; nothing here needs it)
  tf.config.set_visible_devices([], 'GPU')  # tf.data only; keep the GPUs for JAX.
  from scfa_jax import xla_cpu  # pylint: disable=g-import-not-at-top
  cpu_kernels = xla_cpu.apply()  # before JAX starts a backend: XLA reads its flags once
  import jax  # pylint: disable=g-import-not-at-top
  distributed.initialize(distributed=FLAGS.distributed, coordinator_address=FLAGS.coordinator_address,
                         num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)
  from scfa_jax.training import train  # pylint: disable=g-import-not-at-top
  from scfa_jax.training import preemption  # pylint: disable=g-import-not-at-top
  from scfa_jax.training import startup  # pylint: disable=g-import-not-at-top
  if jax.process_index() == 0:
    logging.info(startup.command_line(config_flags.get_config_filename(FLAGS['config']),
                                      config_flags.get_override_values(FLAGS['config'])))
    if jax.default_backend() == 'cpu':
      logging.info(cpu_kernels)
  run = train.train_and_evaluate if FLAGS.mode == 'train' else train.evaluate_workdir
  try:
    run(FLAGS.config, FLAGS.workdir, allow_config_change=FLAGS.allow_config_change)
  except preemption.TrainingInterrupted as e:  # saved; not an error: one line, exit 128 + signal
    print(f'{sys.argv[0]}: {e}', file=sys.stderr)
    sys.exit(e.exit_code)
  except errors.UserError as e:
    _refuse(e)


def _refuse(error: errors.UserError) -> NoReturn:
  """A mistake the message says how to fix, not a bug: one line (or a short block), no traceback."""
  print(f'{sys.argv[0]}: error: {error}', file=sys.stderr)
  sys.exit(error.exit_code)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
