"""The DQN learner: double-Q n-step TD with a Huber loss, prioritised replay and a periodic target network."""

from typing import Any, Callable, Dict, Iterator, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from repertory.agents.learner_base import LearnerBase
from repertory.agents.dqn.config import DQNConfig
from repertory.agents.dqn.networks import DQNNetworks
from repertory.losses.dqn import double_q_nstep_loss
from repertory.replay.types import ReplayBatch, importance_weights


class TrainingState(NamedTuple):
  params: Any
  target_params: Any
  opt_state: Any
  steps: jax.Array


def double_q_loss(q_network, params, target_params, transitions, weights, huber_delta):
  """Importance-weighted Huber loss of double-Q n-step TD errors (van Hasselt et al. 2016, eq. 4)."""
  q_tm1 = q_network.apply(params, transitions.observation)
  q_t_value = q_network.apply(target_params, transitions.next_observation)
  q_t_selector = q_network.apply(params, transitions.next_observation)
  out = double_q_nstep_loss(q_tm1, transitions.action.astype(jnp.int32), transitions.reward,
                            transitions.discount, q_t_value, q_t_selector, huber_delta)
  return jnp.mean(weights * out.loss), out.td_error


class DQNLearner(LearnerBase):
  """Samples a batch, takes one SGD step, writes |δ| back as priorities, refreshes the target."""

  def __init__(self, networks: DQNNetworks, config: DQNConfig, iterator: Iterator[ReplayBatch],
               update_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]], seed: int,
               example_observation: np.ndarray):
    self._config = config
    self._iterator = iterator
    self._update_priorities = update_priorities
    self._optimizer = optax.chain(
        optax.clip_by_global_norm(config.max_gradient_norm),
        optax.adam(config.learning_rate, eps=config.adam_eps))
    q_network = networks.q_network
    params = q_network.init(jax.random.PRNGKey(seed), example_observation[None])
    self._state = TrainingState(params, params, self._optimizer.init(params), jnp.zeros((), jnp.int32))
    self._steps = 0  # a host copy of state.steps, so reading it never waits for the device

    def sgd_step(state: TrainingState, transitions, weights):
      grad_fn = jax.value_and_grad(double_q_loss, argnums=1, has_aux=True)
      (loss, td_errors), grads = grad_fn(q_network, state.params, state.target_params, transitions, weights,
                                         config.huber_delta)
      updates, opt_state = self._optimizer.update(grads, state.opt_state, state.params)
      params = optax.apply_updates(state.params, updates)
      steps = state.steps + 1
      target_params = optax.periodic_update(params, state.target_params, steps, config.target_update_period)
      return TrainingState(params, target_params, opt_state, steps), loss, jnp.abs(td_errors)

    def sgd_steps(state: TrainingState, transitions, weights):
      """`sgd_steps_per_call` updates in one call: transitions and weights carry a leading [K] axis.

      Unrolled rather than `lax.scan`ned: XLA:CPU in jaxlib 0.4.34 runs convolutions inside a
      while-loop ~40x slower (BUILD_NOTES.md).
      """
      losses, priorities = [], []
      for k in range(config.sgd_steps_per_call):
        batch = jax.tree.map(lambda x: x[k], transitions)
        state, loss, batch_priorities = sgd_step(state, batch, weights[k])
        losses.append(loss)
        priorities.append(batch_priorities)
      return state, jnp.mean(jnp.stack(losses)), jnp.stack(priorities)

    self._sgd_steps = jax.jit(sgd_steps)


  def importance_exponent(self) -> float:
    c = self._config
    fraction = min(1.0, self.steps / max(1, c.importance_sampling_anneal_steps))
    return c.importance_sampling_exponent + fraction * (1.0 - c.importance_sampling_exponent)

  def step(self) -> Dict[str, Any]:
    """`sgd_steps_per_call` updates; the loss stays on the device (only priorities leave it)."""
    batches = [next(self._iterator) for _ in range(self._config.sgd_steps_per_call)]
    exponent = self.importance_exponent()
    weights = np.stack([importance_weights(b, exponent) for b in batches])
    data = jax.tree.map(lambda *xs: jnp.stack(xs), *[b.data for b in batches])
    self._state, loss, priorities = self._sgd_steps(self._state, data, weights)
    self._steps += len(batches)
    if self._update_priorities is not None:
      keys = np.concatenate([b.keys for b in batches])
      self._update_priorities(keys, np.asarray(priorities).reshape(-1))
    return {"loss": loss}
