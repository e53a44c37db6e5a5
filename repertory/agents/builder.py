"""The protocol every agent's builder follows; the launchers (sync, thread, ray) need nothing else.

Acme's decomposition: a builder turns an environment spec into the replay table, the adder that
writes it, the learner that samples it, and the actors that act with the learner's parameters.
"""

from typing import Any, Callable, Iterator, Optional, Protocol

import numpy as np

from repertory.agents.data_parallel import DataParallel
from repertory.environments.specs import EnvironmentSpec
from repertory.replay.config import TableConfig
from repertory.replay.types import ReplayBatch


class Learner(Protocol):
  steps: int

  def step(self) -> dict:
    """One update from the next batch of the iterator; returns scalar metrics (may stay on device)."""

  def get_variables(self) -> Any:
    """The parameters actors need."""

  def state(self) -> Any:
    """Everything to checkpoint (a pytree)."""

  def restore(self, state: Any) -> None: ...


class Actor(Protocol):
  def select_action(self, observation: np.ndarray) -> np.ndarray: ...

  def select_actions(self, observations: np.ndarray) -> np.ndarray:
    """Actions [N] for the observations [N, ...] of the N environments (rows) the actor serves."""

  def observe_first(self, timestep, index: int = 0) -> None: ...

  def observe(self, action: np.ndarray, next_timestep, index: int = 0) -> None: ...

  def update(self) -> None:
    """Maybe fetch newer parameters from the variable source."""


class Builder(Protocol):
  name: str
  config: Any  # a frozen dataclass with at least `batch_size` and `updates_per_actor_step` (SGD updates per env step)

  def check_environment(self, spec: EnvironmentSpec) -> None:
    """Raises ConfigError when the agent cannot act in this environment (e.g. continuous actions for DQN)."""

  def table_config(self) -> TableConfig:
    """The replay table, already validated (validate_table_config)."""

  def example_item(self, spec: EnvironmentSpec) -> Any:
    """One replay item of the right shapes and dtypes (the Reverb table signature)."""

  def make_networks(self, spec: EnvironmentSpec) -> Any: ...

  def make_learner(self, networks: Any, spec: EnvironmentSpec, iterator: Iterator[ReplayBatch],
                   update_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]], seed: int,
                   data_parallel: Optional[DataParallel] = None) -> Learner:
    """A learner on `data_parallel`'s devices (one default device when None)."""

  def make_policy(self, networks: Any) -> Any:
    """A jit-compiled policy shared by training actors and the evaluator."""

  def make_adder(self, writer: Any) -> Any:
    """Writes items through `writer.insert(item, priority)` (Reverb writer or in-process table)."""

  def make_actor(self, policy: Any, variable_source: Any, seed: int, adder: Optional[Any] = None,
                 evaluation: bool = False) -> Actor:
    """`variable_source.get_variables()` returns the latest parameters; evaluation actors fetch on every `update()`."""


def learner_steps_per_actor_step(config: Any) -> float:
  """`learner.step()` calls per environment step: each call makes `sgd_steps_per_call` SGD updates (1 by default)."""
  return config.updates_per_actor_step / getattr(config, "sgd_steps_per_call", 1)


def takes_frames_first(builder: Any) -> bool:
  """Whether the builder's learner takes a table's stacked frames frames-first [B, K, H, W] and puts them back
  itself (a builder's `frames_first_batches`; False without one)."""
  return bool(getattr(builder, "frames_first_batches", False))
