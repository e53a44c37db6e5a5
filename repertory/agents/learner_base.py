"""What every learner shares: a host-side step count, the devices it trains on, checkpointing of its
training state, and the plasticity diagnostics row the training loop takes after each step."""

from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp

from repertory.agents.data_parallel import DataParallel
from repertory.plasticity.diagnostics import Diagnostics


class LearnerBase:
  """Subclasses keep their pytree training state (with a `steps` field) in `self._state`, replicated over
  `self.data_parallel`'s devices, and count updates in `self._steps`, a host copy of `state.steps` so
  reading it never waits for the device."""

  _state: Any
  _steps: int = 0
  data_parallel: DataParallel
  _diagnostics: Optional[Diagnostics] = None  # set when the config's diagnostics_period > 0

  def _use_devices(self, data_parallel: Optional[DataParallel]) -> DataParallel:
    self.data_parallel = data_parallel or DataParallel.create()
    return self.data_parallel

  @property
  def steps(self) -> int:
    return self._steps

  def get_variables(self) -> Any:
    return self._state.params

  def take_diagnostics(self) -> Optional[Dict[str, float]]:
    """The plasticity diagnostics computed since the last call (with their `learner_steps`), or None."""
    return None if self._diagnostics is None else self._diagnostics.take()

  def state(self) -> Any:
    return self._state

  def restore(self, state: Any) -> None:
    self._state = self.data_parallel.replicate(jax.tree.map(jnp.asarray, state))
    self._steps = int(self._state.steps)
