"""The DQN actor: ε-greedy over Q-values with one jit-compiled policy call per (batched) step."""

from typing import Any, Callable, Optional

import dm_env
import jax
import numpy as np

from repertory.agents.dqn.networks import DQNNetworks


def linear_epsilon(start: float, end: float, decay_steps: int) -> Callable[[int], float]:
  def epsilon(step: int) -> float:
    return end + (start - end) * max(0.0, 1.0 - step / max(1, decay_steps))
  return epsilon


def make_epsilon_greedy_policy(networks: DQNNetworks):
  """policy(params, key, observations [B, ...], epsilon) → actions [B] (distrax's ε-greedy distribution)."""
  import distrax

  def policy(params, key, observations, epsilon):
    q_values = networks.q_network.apply(params, observations)
    return distrax.EpsilonGreedy(q_values, epsilon).sample(seed=key)

  return jax.jit(policy)


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


class DQNActor:
  """Acts ε-greedily on one environment or a batch of them (one jit policy call per batch step).

  `adder` is one adder, or a list with one adder per environment of a vectorised environment.
  """

  def __init__(self, policy, variable_client: VariableClient, epsilon: Callable[[int], float], seed: int,
               adder: Optional[Any] = None):
    self._policy = policy
    self._client = variable_client
    self._epsilon = epsilon
    self._adders = adder if isinstance(adder, (list, tuple)) else [adder]
    self._key = jax.random.PRNGKey(seed)
    self._steps = 0

  def select_actions(self, observations: np.ndarray) -> np.ndarray:
    self._key, key = jax.random.split(self._key)
    return np.asarray(self._policy(self._client.params, key, observations, self._epsilon(self._steps)))

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
