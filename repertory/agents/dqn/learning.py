"""DQN's loss object and learner: double-Q n-step TD with a Huber loss on the shared SGD learner.

Loss: van Hasselt et al. 2016, arXiv 1509.06461, eq. 4, with n-step returns (Rainbow, Hessel et al.
2018, arXiv 1710.02298, eq. 2), importance-weighted (Schaul et al. 2016, §3.4); |δ| is the new priority.
"""

from typing import Callable, Iterator, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from repertory.agents.dqn.config import DQNConfig
from repertory.agents.dqn.networks import DQNNetworks
from repertory.agents.sgd_learner import LearnerSettings, LossExtras, LossInputs, SGDLearner, plasticity_arguments
from repertory.losses.dqn import double_q_nstep_loss
from repertory.replay.types import ReplayBatch


def double_q_loss(q_network, params, target_params, transitions, weights, huber_delta):
  """Importance-weighted Huber loss of double-Q n-step TD errors (van Hasselt et al. 2016, eq. 4)."""
  q_tm1 = q_network.apply(params, transitions.observation)
  q_t_value = q_network.apply(target_params, transitions.next_observation)
  q_t_selector = q_network.apply(params, transitions.next_observation)
  out = double_q_nstep_loss(q_tm1, transitions.action.astype(jnp.int32), transitions.reward,
                            transitions.discount, q_t_value, q_t_selector, huber_delta)
  return jnp.mean(weights * out.loss), out.td_error


class DoubleQLoss:
  """`SGDLearner` loss: the weighted double-Q Huber loss; priorities |δ|."""

  def __init__(self, huber_delta: Optional[float]):
    self._huber_delta = huber_delta

  def __call__(self, networks: DQNNetworks, params, target_params, inputs: LossInputs, key: jax.Array):
    del key  # deterministic networks
    loss, td_error = double_q_loss(networks.q_network, params, target_params, inputs.transitions, inputs.weights,
                                   self._huber_delta)
    return loss, LossExtras(jnp.abs(td_error), inputs.net_state, {})

  def forward(self, networks: DQNNetworks, params, net_state, transitions, key: jax.Array) -> jax.Array:
    """Q(s_t, ·) [B, A], what the diagnostics probe."""
    del net_state, key
    return networks.q_network.apply(params, transitions.observation)


def make_learner(networks: DQNNetworks, config: DQNConfig, iterator: Iterator[ReplayBatch],
                 update_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]], seed: int,
                 example_observation: np.ndarray, loss=None, data_parallel=None) -> SGDLearner:
  """DQN on the shared learner: Adam after global-norm clipping; `loss` defaults to `DoubleQLoss`."""
  optimizer = optax.chain(optax.clip_by_global_norm(config.max_gradient_norm),
                          optax.adam(config.learning_rate, eps=config.adam_eps))
  key = jax.random.PRNGKey(seed)
  params = networks.q_network.init(key, example_observation[None])
  settings = LearnerSettings(config.target_update_period, config.importance_sampling_exponent,
                             config.importance_sampling_anneal_steps, config.sgd_steps_per_call)
  return SGDLearner(networks, loss or DoubleQLoss(config.huber_delta), optimizer, params, {}, settings, iterator,
                    update_priorities, jax.random.fold_in(key, 1), data_parallel=data_parallel,
                    **plasticity_arguments(config, lambda key: networks.q_network.init(key, example_observation[None])))
