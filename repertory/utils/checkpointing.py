"""Learner checkpoints with orbax: keep the newest few, restore the latest."""

import os
from typing import Any, Optional

import jax
import numpy as np


class Checkpointer:
  def __init__(self, directory: str, max_to_keep: int = 2):
    import orbax.checkpoint as ocp
    self._ocp = ocp
    self._manager = ocp.CheckpointManager(
        os.path.abspath(directory), options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def save(self, step: int, state: Any) -> None:
    if self._manager.latest_step() == step:
      return  # nothing new since the last save
    state = jax.tree.map(np.asarray, state)
    self._manager.save(step, args=self._ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def restore(self, like: Any, step: Optional[int] = None) -> Any:
    """Restores into the structure of `like` (the freshly initialised state)."""
    step = self._manager.latest_step() if step is None else step
    abstract = jax.tree.map(np.asarray, like)
    return self._manager.restore(step, args=self._ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self._manager.close()
