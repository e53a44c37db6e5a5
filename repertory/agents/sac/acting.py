"""The SAC actor: samples from the tanh-Gaussian policy (training) or takes its mode tanh(mean)
(evaluation, as the SAC paper's deterministic evaluation), rescaled to the environment's bounds.

Training actors take uniform random actions for their first `min_replay_size` steps (the usual SAC
warm-up, e.g. DrQ-v2's seed frames), then act with one jit-compiled policy call per (batched) step.
"""

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from repertory.agents.actor_base import FeedForwardActor, VariableClient
from repertory.agents.sac import networks as sac_networks


class SACPolicy:
  """policy(variables, key, observations [B, ...], evaluation: bool) → actions [B, *action_shape];
  carries its networks (action bounds and shape) for the actor."""

  def __init__(self, networks: sac_networks.SACNetworks, function):
    self.networks = networks
    self._function = function

  def __call__(self, variables, key, observations, evaluation: bool):
    return self._function(variables, key, observations, evaluation)


def make_policy(networks: sac_networks.SACNetworks) -> SACPolicy:
  """A jit-compiled `SACPolicy` shared by training actors and the evaluator."""

  def policy(variables, key, observations, evaluation):
    features = networks.encoder.apply(variables["encoder"], None, observations, False)
    mean, log_std = networks.actor.apply(variables["actor"], None, features)
    if evaluation:
      unit = jnp.tanh(mean)
    else:
      unit = sac_networks.tanh_gaussian(mean, log_std).sample(seed=key)
    return networks.to_environment_action(unit).astype(jnp.float32)

  return SACPolicy(networks, jax.jit(policy, static_argnums=3))


class SACActor(FeedForwardActor):
  """Acts on one environment or a batch of them; `adder` is one adder or one per environment."""

  SNAPSHOT_FIELDS = ("_key", "_rng")

  def __init__(self, policy: SACPolicy, variable_client: VariableClient, seed: int, adder: Optional[Any] = None,
               evaluation: bool = False, random_steps: int = 0):
    super().__init__(variable_client, adder)
    self._policy = policy
    self._networks = policy.networks
    self._action_shape = tuple(policy.networks.action_shape)
    self._evaluation = evaluation
    self._random_steps = 0 if evaluation else random_steps
    self._key = jax.random.PRNGKey(seed)
    self._rng = np.random.default_rng(seed)

  def select_actions(self, observations: np.ndarray) -> np.ndarray:
    observations = np.asarray(observations)
    batch = observations.shape[0]
    if self._steps < self._random_steps:
      low, high = self._networks.action_minimum, self._networks.action_maximum
      actions = self._rng.uniform(low, high, size=(batch, low.shape[0])).astype(np.float32)
      return actions.reshape((batch,) + self._action_shape)
    self._key, key = jax.random.split(self._key)
    actions = np.asarray(self._policy(self._client.params, key, observations, self._evaluation))
    return actions.reshape((batch,) + self._action_shape)
