"""The DQN actor: ε-greedy over Q-values with one jit-compiled policy call per (batched) step."""

from typing import Any, Callable, Optional

import jax
import numpy as np

from repertory.agents.actor_base import FeedForwardActor, VariableClient
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


class DQNActor(FeedForwardActor):
  """Acts ε-greedily on one environment or a batch of them (one jit policy call per batch step)."""

  SNAPSHOT_FIELDS = ("_key",)

  def __init__(self, policy, variable_client: VariableClient, epsilon: Callable[[int], float], seed: int,
               adder: Optional[Any] = None):
    super().__init__(variable_client, adder)
    self._policy = policy
    self._epsilon = epsilon
    self._key = jax.random.PRNGKey(seed)

  @property
  def policy(self) -> Callable[..., Any]:
    """policy(variables, key, observations, epsilon) → actions: what `select_actions` calls."""
    return self._policy

  @property
  def key(self):
    return self._key

  def policy_inputs(self, split=None):
    """(key, ε) of this actor's next action: its key advances as `select_actions` advances it. `split`: this
    actor's key already split in two (a group of actors splits all their keys in one call)."""
    self._key, key = jax.random.split(self._key) if split is None else split
    return key, self._epsilon(self._steps)

  def select_actions(self, observations: np.ndarray) -> np.ndarray:
    key, epsilon = self.policy_inputs()
    return np.asarray(self._policy(self._client.params, key, observations, epsilon))
