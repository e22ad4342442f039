"""The optimiser, its schedule and the step loop shared by pre-training and fine-tuning.

``fit`` owns the side effects of a training phase (console progress,
TensorBoard scalars, NaN checks, periodic checkpoints, stopping on signals) so that SupCon
pre-training (``training.train``) and cross-entropy fine-tuning
(``evaluation.finetune``) behave identically: both resume, log and stop alike.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any, Callable, Iterator

import jax
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
import tqdm

from scfa_jax import errors
from scfa_jax.training import checkpointing
from scfa_jax.training import preemption


def learning_rate_schedule(optim_config: ml_collections.ConfigDict, *, steps_per_epoch: int,
                           total_steps: int) -> optax.Schedule:
  """Linear warm-up to the peak, then cosine decay to ``peak * end_learning_rate_factor``."""
  warmup = min(int(round(optim_config.warmup_epochs * steps_per_epoch)), max(total_steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=optim_config.learning_rate, warmup_steps=warmup,
      decay_steps=max(total_steps, warmup + 1), end_value=optim_config.learning_rate * optim_config.end_learning_rate_factor)


def create_optimizer(optim_config: ml_collections.ConfigDict, schedule: optax.Schedule) -> optax.GradientTransformation:
  """Adam (AdamW when weight decay is set), optionally after global-norm clipping."""
  if optim_config.weight_decay:
    adam = optax.adamw(schedule, weight_decay=optim_config.weight_decay)
  else:
    adam = optax.adam(schedule)
  if optim_config.grad_clip_norm:
    return optax.chain(optax.clip_by_global_norm(optim_config.grad_clip_norm), adam)
  return adam


class Progress:
  """Console progress: one log line per log step, plus a live bar on a terminal.

  Log lines go through logging; ``scfa_jax.console`` writes them with
  ``tqdm.write``, above the bar. The first interval includes compilation, so
  it reports its duration instead of a meaningless throughput and ETA.
  """

  def __init__(self, *, start_step: int, total_steps: int, grids_per_step: int, enabled: bool):
    self.total_steps = total_steps
    self.grids_per_step = grids_per_step
    self.enabled = enabled
    self._last_step, self._last_time = start_step, time.perf_counter()
    self._first = True
    self._bar = None
    if enabled and sys.stderr.isatty():
      self._bar = tqdm.tqdm(total=total_steps, initial=start_step, unit='step', dynamic_ncols=True,
                            file=sys.stderr, leave=False)

  def update(self, step: int, scalars: dict[str, float]) -> dict[str, float]:
    """Records a log step; returns throughput scalars for the writer."""
    now = time.perf_counter()
    elapsed = max(now - self._last_time, 1e-9)
    steps_per_s = (step - self._last_step) / elapsed
    self._last_step, self._last_time = step, now
    rates = {'steps_per_s': steps_per_s, 'grids_per_s': steps_per_s * self.grids_per_step}
    if self.enabled:
      loss = scalars.get('loss', math.nan)  # none when every update of the interval was skipped
      if self._first:
        speed = f'{elapsed:.0f} s including compilation'
      else:
        eta = (self.total_steps - step) / max(steps_per_s, 1e-9)
        speed = f'{rates["grids_per_s"]:.1f} grids/s | ETA {time.strftime("%H:%M:%S", time.gmtime(eta))}'
      line = f'step {step}/{self.total_steps} ({100 * step / self.total_steps:.0f}%) | loss {loss:.4f} | {speed}'
      if self._bar is not None:
        self._bar.update(step - self._bar.n)
        self._bar.set_postfix_str(f'loss {loss:.4f}', refresh=False)
      logging.info(line)
    self._first = False
    return rates

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()


class NonFiniteError(errors.UserError, FloatingPointError):
  """A step produced a non-finite loss or gradient norm; nothing from it was saved."""

  exit_code = 1


def _summarize(pending: list[dict[str, np.ndarray]]) -> dict[str, float]:
  """Means over a logging interval of the applied steps, and how many updates were skipped."""
  applied = [m for m in pending if not m.get('skipped', 0)]
  scalars = {k: float(np.mean([m[k] for m in applied])) for k in applied[0] if k != 'skipped'} if applied else {}
  if 'skipped' in pending[-1]:
    scalars['skipped_steps'] = float(sum(m['skipped'] for m in pending))
  return scalars


def _check_finite(metrics: list[dict[str, np.ndarray]], first_step: int, manager: ocp.CheckpointManager,
                  nan_hint: str) -> None:
  """Raises NonFiniteError at the first applied step with a non-finite loss or gradient norm."""
  for step, m in enumerate(metrics, start=first_step):
    if not m.get('skipped', 0) and not (np.isfinite(m['loss']) and np.isfinite(m['grad_norm'])):
      latest = manager.latest_step()
      last_good = (f'the last checkpoint, {manager.directory}/{latest}, is from before it' if latest is not None
                   else 'no checkpoint was written')
      raise NonFiniteError(
          f'Loss {float(m["loss"])}, gradient norm {float(m["grad_norm"])} at step {step}: stopped without saving '
          f'it ({last_good}). {nan_hint} Or set config.train.skip_nonfinite_steps=True to skip such updates.')


def fit(state: Any, p_train_step: Callable[..., tuple[Any, dict[str, jax.Array]]],
        batches: Iterator[dict[str, jax.Array]], *, start_step: int, last_step: int, grids_per_step: int,
        log_every_steps: int, ckpt_every_steps: int, manager: ocp.CheckpointManager, writer: Any,
        nan_hint: str) -> Any:
  """Runs steps ``start_step + 1 .. last_step`` and returns the (replicated) state.

  Scalars are averaged over each logging interval and fetched only at log and
  checkpoint steps, so the host does not wait on the device every step. Every
  step's loss and gradient norm are checked before each save, so a checkpoint
  never holds non-finite parameters: a bad step raises NonFiniteError with
  ``nan_hint`` (steps the train step skipped itself, ``metrics['skipped']``,
  are only counted). SIGTERM or SIGINT finish the current step, save it and
  raise ``preemption.TrainingInterrupted``.
  """
  progress = Progress(start_step=start_step, total_steps=last_step, grids_per_step=grids_per_step,
                      enabled=jax.process_index() == 0)
  pending: list[dict[str, Any]] = []  # metrics of the steps since the last log step
  checked = 0  # how many of them were fetched and checked (at a checkpoint between log steps)
  try:
    with preemption.StopOnSignal() as signals:
      for step in range(start_step + 1, last_step + 1):
        state, metrics = p_train_step(state, next(batches))
        pending.append(metrics)
        stopping = signals.should_stop(step)
        log = step % log_every_steps == 0 or step == last_step or stopping
        save = step % ckpt_every_steps == 0 or step == last_step or stopping
        if log or save:
          pending = jax.device_get(pending)
          _check_finite(pending[checked:], step - len(pending) + 1 + checked, manager, nan_hint)
          checked = len(pending)
        if log:
          scalars = _summarize(pending)
          pending, checked = [], 0
          if scalars.get('skipped_steps'):
            logging.warning('Skipped %d non-finite update(s) in the steps up to %d.', scalars['skipped_steps'], step)
          scalars.update(progress.update(step, scalars))
          writer.write_scalars(step, {f'train/{k}': v for k, v in scalars.items()})
        if save:
          checkpointing.save(manager, step, state)
        if stopping:
          raise preemption.TrainingInterrupted(signals.signum, step, str(manager.directory))
  finally:
    progress.close()
    writer.flush()
  return state
