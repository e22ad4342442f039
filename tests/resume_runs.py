"""A run trained straight through against the same run stopped at step 4 and resumed: the exact-resume tests."""

import ml_collections
import orbax.checkpoint as ocp

from scfa_jax.training import checkpointing
from scfa_jax.training import train


def straight_and_resumed(config: ml_collections.ConfigDict, tmp_path, *, stop_at: int = 4,
                         final_step: int = 6) -> tuple[dict, dict]:
  """The final checkpoints (restored as plain trees) of a straight run and of one resumed after ``stop_at`` steps."""
  config.eval.after_training = False
  straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
  train.train_and_evaluate(config, straight)
  config.train.max_steps = stop_at
  train.train_and_evaluate(config, resumed)
  config.train.max_steps = -1
  train.train_and_evaluate(config, resumed)

  def final(workdir: str) -> dict:
    manager = checkpointing.create_manager(workdir, config.ckpt)
    return manager.restore(final_step, args=ocp.args.StandardRestore())

  return final(straight), final(resumed)
