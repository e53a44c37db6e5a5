"""What every learner shares: a host-side step count, the devices it trains on, checkpointing of its
training state, and the plasticity diagnostics row the training loop takes after each step."""

from typing import Any, Callable, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from repertory.agents.data_parallel import DataParallel
from repertory.errors import ConfigError
from repertory.plasticity.diagnostics import Diagnostics
from repertory.plasticity.injection import InjectionSchedule
from repertory.plasticity.resets import ResetSchedule


def first_copy(x: Any) -> Any:
  """This process's copy of a replicated array, as numpy."""
  return np.asarray(x.addressable_shards[0].data) if isinstance(x, jax.Array) else x


def jit_reset(reset_state: Callable[[Any, Any], Any], devices: DataParallel) -> Callable[[Any, Any], Any]:
  """(training state, a batch) → training state with the scheduled reset applied, jitted over `devices`."""
  if devices.num_processes > 1:
    raise ConfigError("scheduled resets (shrink_perturb_period, redo_period) run in one learner process; "
                      "use one process or set them to 0")
  return jax.jit(reset_state, in_shardings=(devices.replicated, devices.replicated), out_shardings=devices.replicated)


class LearnerBase:
  """Subclasses keep their pytree training state (with a `steps` field) in `self._state`, replicated over
  `self.data_parallel`'s devices, and count updates in `self._steps`, a host copy of `state.steps` so
  reading it never waits for the device."""

  _state: Any
  _steps: int = 0
  data_parallel: DataParallel
  _diagnostics: Optional[Diagnostics] = None  # set when the config's diagnostics_period > 0
  _injection: Optional[InjectionSchedule] = None  # set when the config's injection_step > 0
  _reset_schedule: Optional[ResetSchedule] = None  # set when a scheduled reset is configured

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
    for schedule in (self._injection, self._reset_schedule):
      if schedule is not None:
        schedule.forget()

  def _host_copy(self, tree: Any) -> Any:
    return jax.tree.map(first_copy, tree)

  def _injectable_params(self) -> Any:
    """The parameters holding the injectable heads (a dict of Haiku modules)."""
    return self._state.params

  def _inject_due(self) -> bool:
    return self._injection is not None and self._injection.due(self._steps, lambda: self._host_copy(
        self._injectable_params()))

  def _reset_due(self) -> bool:
    return self._reset_schedule is not None and self._reset_schedule.due(self._steps)
