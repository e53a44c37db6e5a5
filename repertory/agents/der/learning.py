"""The DER learner: categorical double-Q n-step learning with prioritised replay (Rainbow's update).

Loss (Hessel et al. 2018, arXiv 1710.02298, eq. 3 with double-Q action selection; Bellemare et al.
2017, arXiv 1707.06887, Algorithm 1 projection): `rlax.categorical_double_q_learning`, i.e. the
cross-entropy between the projected target distribution of the target network at
a* = argmax_a Q_online(s_{t+n}, a) and the online distribution at (s_t, a_t). Each example's loss is
weighted by its importance weight (Schaul et al. 2016, §3.4) and written back as its priority
(the table raises it to α = 0.5). The target network is copied every `target_update_period` updates.

Noise: the online network at s_t, the online selector at s_{t+n} and the target network each get
their own noise sample (independent noisy-net draws, as Rainbow). Encoders run in training mode
(A-LIX shifts, spectral-norm statistics updated) only in the online pass at s_t; selector and target
passes run in evaluation mode.
"""

from typing import Any, Callable, Dict, Iterator, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
import rlax

from repertory.agents.learner_base import LearnerBase
from repertory.agents.der import networks as der_networks
from repertory.agents.der.config import DERConfig
from repertory.replay.types import ReplayBatch, importance_weights


class TrainingState(NamedTuple):
  params: Any
  target_params: Any
  net_state: Any  # Haiku state (S-RYM power-iteration vectors); empty for der / alix
  opt_state: Any
  key: jax.Array
  steps: jax.Array


def make_optimizer(config: DERConfig) -> optax.GradientTransformation:
  """Adam(lr 1e-4, eps 1.5e-4) after global-norm clipping at 10; A-LIX's S gets its own Adam (alix_optimizer.py)."""
  default = optax.chain(optax.clip_by_global_norm(config.max_gradient_norm),
                        optax.adam(config.learning_rate, eps=config.adam_eps))
  if config.encoder == "alix":
    from repertory.networks.alix_optimizer import make_alix_optimizer
    return make_alix_optimizer(default)  # clipping stays inside the default branch, as alix_optimizer.py asks
  return default


def categorical_double_q_loss(networks: der_networks.DERNetworks, params, target_params, net_state, key,
                              transitions, weights):
  """Importance-weighted mean cross-entropy; returns (loss, (per-example losses, new Haiku state))."""
  apply = networks.network.apply
  noisy = networks.has_noise
  key_online, key_selector, key_target = jax.random.split(key, 3)
  logits_tm1, new_state = apply(params, net_state, key_online, transitions.observation, True, noisy)
  logits_t, _ = apply(target_params, net_state, key_target, transitions.next_observation, False, noisy)
  selector_logits, _ = apply(params, net_state, key_selector, transitions.next_observation, False, noisy)
  q_t_selector = der_networks.q_values(selector_logits, networks.atoms)
  atoms = networks.atoms
  per_example = jax.vmap(rlax.categorical_double_q_learning, in_axes=(None, 0, 0, 0, 0, None, 0, 0))(
      atoms, logits_tm1, transitions.action.astype(jnp.int32), transitions.reward, transitions.discount,
      atoms, jax.lax.stop_gradient(logits_t), jax.lax.stop_gradient(q_t_selector))
  return jnp.mean(weights * per_example), (per_example, new_state)


class DERLearner(LearnerBase):
  """Samples a batch, takes one update, writes the per-example losses back as priorities."""

  def __init__(self, networks: der_networks.DERNetworks, config: DERConfig, iterator: Iterator[ReplayBatch],
               update_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]], seed: int,
               example_observation: np.ndarray):
    self._config = config
    self._iterator = iterator
    self._update_priorities = update_priorities
    self._optimizer = make_optimizer(config)
    init_key, key = jax.random.split(jax.random.PRNGKey(seed))
    params, net_state = networks.network.init(init_key, example_observation[None], True, networks.has_noise)
    self._state = TrainingState(params, params, net_state, self._optimizer.init(params), key,
                                jnp.zeros((), jnp.int32))
    self._steps = 0  # host copy of state.steps

    def sgd_step(state: TrainingState, transitions, weights):
      key, step_key = jax.random.split(state.key)
      grad_fn = jax.value_and_grad(categorical_double_q_loss, argnums=1, has_aux=True)
      (loss, (per_example, net_state)), grads = grad_fn(
          networks, state.params, state.target_params, state.net_state, step_key, transitions, weights)
      updates, opt_state = self._optimizer.update(grads, state.opt_state, state.params)
      params = optax.apply_updates(state.params, updates)
      steps = state.steps + 1
      target_params = optax.periodic_update(params, state.target_params, steps, config.target_update_period)
      metrics = {"loss": loss, "grad_norm": optax.global_norm(grads)}
      if config.encoder == "alix":
        from repertory.networks.alix_optimizer import alix_shift
        metrics["alix_shift"] = alix_shift(params)
      return TrainingState(params, target_params, net_state, opt_state, key, steps), metrics, per_example

    self._sgd_step = jax.jit(sgd_step)


  def importance_exponent(self) -> float:
    """β annealed linearly from β0 to 1 over `importance_sampling_anneal_steps` updates."""
    c = self._config
    fraction = min(1.0, self._steps / max(1, c.importance_sampling_anneal_steps))
    return c.importance_sampling_exponent + fraction * (1.0 - c.importance_sampling_exponent)

  def step(self) -> Dict[str, Any]:
    batch = next(self._iterator)
    weights = importance_weights(batch, self.importance_exponent())
    self._state, metrics, priorities = self._sgd_step(self._state, batch.data, weights)
    self._steps += 1
    if self._update_priorities is not None:
      self._update_priorities(batch.keys, np.asarray(priorities))
    return metrics

  def get_variables(self) -> Dict[str, Any]:
    return {"params": self._state.params, "state": self._state.net_state}
