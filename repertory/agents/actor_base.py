"""Pieces every actor shares: a parameter copy refreshed from the learner, and adder bookkeeping."""

from typing import Any, Optional

import dm_env
import numpy as np


class VariableClient:
  """Keeps a copy of the learner's parameters, refreshed every `period` calls to `maybe_update`."""

  def __init__(self, source: Any, period: int):
    self._source = source
    self._period = max(1, period)
    self._calls = 0
    self.params = source.get_variables()

  def maybe_update(self) -> None:
    self._calls += 1
    if self._calls % self._period == 0:
      self.params = self._source.get_variables()


class FeedForwardActor:
  """An actor without recurrent state: subclasses give `select_actions(observations [N, ...])`.

  `adder` is one adder, or a list with one adder per environment of a vectorised environment.
  """

  def __init__(self, client: VariableClient, adder: Optional[Any] = None):
    self._client = client
    self._adders = adder if isinstance(adder, (list, tuple)) else [adder]
    self._steps = 0

  def select_actions(self, observations: np.ndarray) -> np.ndarray:
    raise NotImplementedError

  def select_action(self, observation: np.ndarray) -> np.ndarray:
    return self.select_actions(np.asarray(observation)[None])[0]

  def observe_first(self, timestep: dm_env.TimeStep, index: int = 0) -> None:
    if self._adders[index] is not None:
      self._adders[index].add_first(timestep)

  def observe(self, action: np.ndarray, next_timestep: dm_env.TimeStep, index: int = 0) -> None:
    self._steps += 1
    if self._adders[index] is not None:
      self._adders[index].add(action, next_timestep)

  def update(self) -> None:
    self._client.maybe_update()
