"""The DQN actor: ε-greedy over Q-values with one jit-compiled policy call per (batched) step."""

from typing import Any, Callable, Optional

import dm_env
import jax
import jax.numpy as jnp
import numpy as np

from repertory.agents.dqn.networks import DQNNetworks


def linear_epsilon(start: float, end: float, decay_steps: int) -> Callable[[int], float]:
  def epsilon(step: int) -> float:
    return end + (start - end) * max(0.0, 1.0 - step / max(1, decay_steps))
  return epsilon


def make_epsilon_greedy_policy(networks: DQNNetworks):
  """policy(params, key, observations [B, ...], epsilon) → actions [B] (rlax's ε-greedy distribution)."""
  import rlax

  def policy(params, key, observations, epsilon):
    q_values = networks.q_network.apply(params, observations)
    return rlax.epsilon_greedy(epsilon).sample(key, q_values)

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
  """Acts ε-greedily on one environment; hands observed transitions to an adder (if any)."""

  def __init__(self, policy, variable_client: VariableClient, epsilon: Callable[[int], float], seed: int,
               adder: Optional[Any] = None):
    self._policy = policy
    self._client = variable_client
    self._epsilon = epsilon
    self._adder = adder
    self._key = jax.random.PRNGKey(seed)
    self._steps = 0

  def select_action(self, observation: np.ndarray) -> np.ndarray:
    self._key, key = jax.random.split(self._key)
    action = self._policy(self._client.params, key, jnp.asarray(observation)[None], self._epsilon(self._steps))
    return np.asarray(action[0])

  def observe_first(self, timestep: dm_env.TimeStep) -> None:
    if self._adder is not None:
      self._adder.add_first(timestep)

  def observe(self, action: np.ndarray, next_timestep: dm_env.TimeStep) -> None:
    self._steps += 1
    if self._adder is not None:
      self._adder.add(action, next_timestep)

  def update(self) -> None:
    self._client.maybe_update()
