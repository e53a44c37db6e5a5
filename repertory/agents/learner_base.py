"""What every learner shares: a host-side step count, and checkpointing of its training state."""

from typing import Any

import jax
import jax.numpy as jnp


class LearnerBase:
  """Subclasses keep their pytree training state (with a `steps` field) in `self._state` and count updates
  in `self._steps`, a host copy of `state.steps` so reading it never waits for the device."""

  _state: Any
  _steps: int = 0

  @property
  def steps(self) -> int:
    return self._steps

  def get_variables(self) -> Any:
    return self._state.params

  def state(self) -> Any:
    return self._state

  def restore(self, state: Any) -> None:
    self._state = jax.tree.map(jnp.asarray, state)
    self._steps = int(self._state.steps)
