"""Adders: turn an actor's stream of dm_env timesteps into replay items.

A writer is anything with `insert(item, priority)` (the Reverb writer, a table client, or a `Table`).
"""

import collections
from typing import Any, NamedTuple, Optional

import dm_env
import numpy as np


class Transition(NamedTuple):
  """An n-step transition: bootstrap target = reward + discount · V(next_observation)."""

  observation: Any
  action: Any
  reward: np.ndarray
  discount: np.ndarray
  next_observation: Any


class NStepTransitionAdder:
  """Writes n-step transitions (Sutton & Barto 2018, §7.1; as in Rainbow and Acme).

  From o_t, with m = min(n, steps left in the episode):
    reward   = Σ_{k<m} (Π_{j<k} γ·d_{t+j+1}) · r_{t+k+1}
    discount = Π_{k<m} γ·d_{t+k+1}
  so a termination (d = 0) inside the window stops bootstrapping and a truncation (d = 1) keeps it.
  """

  SNAPSHOT_FIELDS = ("_pending", "_observation")  # what a resumed run needs (utils.snapshots)

  def __init__(self, writer: Any, n_step: int, discount: float, priority: Optional[float] = None):
    if n_step < 1:
      raise ValueError(f"n_step must be >= 1, got {n_step}")
    self._writer = writer
    self._n = n_step
    self._gamma = float(discount)
    self._priority = priority
    self._pending: collections.deque = collections.deque()  # (o_t, a_t, r_{t+1}, d_{t+1})
    self._observation = None

  def add_first(self, timestep: dm_env.TimeStep) -> None:
    if not timestep.first():
      raise ValueError("add_first expects a FIRST timestep")
    self._pending.clear()
    self._observation = timestep.observation

  def add(self, action: Any, next_timestep: dm_env.TimeStep) -> None:
    if self._observation is None:
      raise ValueError("call add_first before add")
    self._pending.append((self._observation, action, float(next_timestep.reward), float(next_timestep.discount)))
    self._observation = next_timestep.observation
    if next_timestep.last():
      while self._pending:
        self._emit()
      self._observation = None
    elif len(self._pending) == self._n:
      self._emit()

  def _emit(self) -> None:
    reward, discount = 0.0, 1.0
    for _, _, r, d in self._pending:
      reward += discount * r
      discount *= self._gamma * d
    observation, action, _, _ = self._pending.popleft()
    self._writer.insert(
        Transition(observation, np.asarray(action), np.float32(reward), np.float32(discount), self._observation),
        self._priority)
