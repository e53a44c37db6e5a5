"""The IMPALA actor: samples from π with the recurrent core, one jit-compiled call per (batched) step.

The actor owns the core state (one row per environment of a vectorised actor). A FIRST timestep
marks its row for reset; the reset happens inside the core on the next step (`core(x, state, reset)`),
exactly as the learner's unroll resets at the stored `reset` flags. For every step it hands the adder
the behaviour logits and the core states, so each sequence carries μ and its initial state.
"""

from typing import Any, Optional

import dm_env
import jax
import jax.numpy as jnp
import numpy as np

from repertory.agents.actor_base import VariableClient
from repertory.agents.impala.networks import IMPALANetworks


class IMPALAPolicy:
  """`step(params, key, observations [B, ...], state, reset [B], greedy)` → (actions, logits, state)."""

  def __init__(self, networks: IMPALANetworks):
    self.networks = networks

    def step(params, key, observations, state, reset, greedy):
      logits, _, state = networks.step(params, observations, state, reset)
      if greedy:
        actions = jnp.argmax(logits, axis=-1)
      else:
        actions = jax.random.categorical(key, logits)
      return actions.astype(jnp.int32), logits, state

    self.step = jax.jit(step, static_argnames="greedy")
    self.initial_state = jax.jit(networks.initial_state, static_argnums=1)


def _row(state: Any, i: int) -> Any:
  return jax.tree.map(lambda x: x[i], state)


class IMPALAActor:
  """Acts on one environment or a vectorised batch (`adder` a list with one adder per environment)."""

  SNAPSHOT_FIELDS = ("_client", "_adders", "_key", "_state", "_reset", "_logits")

  def __init__(self, policy: IMPALAPolicy, client: VariableClient, seed: int, adder: Optional[Any] = None,
               greedy: bool = False, num_envs: Optional[int] = None):
    self._policy = policy
    self._client = client
    self._adders = list(adder) if isinstance(adder, (list, tuple)) else [adder]
    self._num = num_envs or len(self._adders)
    self._greedy = greedy
    self._key = jax.random.PRNGKey(seed)
    self._state = None  # numpy pytree, leaves [num_envs, ...]
    self._reset = np.ones(self._num, bool)
    self._logits = None

  def _ensure_state(self) -> None:
    if self._state is None:
      self._state = jax.device_get(self._policy.initial_state(self._client.params, self._num))

  def select_actions(self, observations: np.ndarray) -> np.ndarray:
    self._ensure_state()
    self._key, key = jax.random.split(self._key)
    actions, logits, state = self._policy.step(self._client.params, key, observations, self._state,
                                               self._reset, self._greedy)
    self._state = jax.device_get(state)
    self._logits = np.asarray(logits)
    self._reset = np.zeros(self._num, bool)
    return np.asarray(actions)

  def select_action(self, observation: np.ndarray) -> np.ndarray:
    return self.select_actions(np.asarray(observation)[None])[0]

  def observe_first(self, timestep: dm_env.TimeStep, index: int = 0) -> None:
    self._ensure_state()
    self._reset[index] = True
    if self._adders[index] is not None:
      self._adders[index].add_first(timestep, _row(self._state, index))

  def observe(self, action: np.ndarray, next_timestep: dm_env.TimeStep, index: int = 0) -> None:
    if self._adders[index] is not None:
      self._adders[index].add(action, next_timestep, self._logits[index], _row(self._state, index))

  def update(self) -> None:
    self._client.maybe_update()
