"""DER's loss object and learner: categorical double-Q n-step learning with prioritised replay (Rainbow's update)
on the shared SGD learner.

Loss (Hessel et al. 2018, arXiv 1710.02298, eq. 3 with double-Q action selection; Bellemare et al.
2017, arXiv 1707.06887, Algorithm 1 projection): `losses.dqn.categorical_double_q_nstep`, i.e. the
cross-entropy between the projected target distribution of the target network at
a* = argmax_a Q_online(s_{t+n}, a) and the online distribution at (s_t, a_t). Each example's loss is
weighted by its importance weight (Schaul et al. 2016, §3.4) and written back as its priority
(the table raises it to α = 0.5). The target network is copied every `target_update_period` updates.

Noise: the online network at s_t, the online selector at s_{t+n} and the target network each get
their own noise sample (independent noisy-net draws, as Rainbow). Encoders run in training mode
(A-LIX shifts, spectral-norm statistics updated) only in the online pass at s_t; selector and target
passes run in evaluation mode.
"""

from typing import Callable, Iterator, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from repertory.agents.der import networks as der_networks
from repertory.agents.der.config import DERConfig
from repertory.agents.sgd_learner import LearnerSettings, LossExtras, LossInputs, SGDLearner, plasticity_arguments
from repertory.losses.dqn import categorical_double_q_nstep
from repertory.networks.encoders import Encoder
from repertory.replay.types import ReplayBatch


def make_optimizer(config: DERConfig, encoder: Encoder) -> optax.GradientTransformation:
  """Adam(lr 1e-4, eps 1.5e-4) after global-norm clipping at 10, wrapped as the encoder needs (A-LIX: S gets
  its own Adam); the clipping stays inside the wrapped branch."""
  return encoder.wrap_optimizer(optax.chain(optax.clip_by_global_norm(config.max_gradient_norm),
                                            optax.adam(config.learning_rate, eps=config.adam_eps)))


class CategoricalDoubleQLoss:
  """`SGDLearner` loss: the importance-weighted mean C51 double-Q cross-entropy; priorities = per-example losses.

  With an encoder that augments (drq), s_t and s_{t+n} are augmented independently (DrQ, arXiv 2004.13649)."""

  def __init__(self, augmentation_pad: int = 0):
    self._pad = augmentation_pad

  def __call__(self, networks: der_networks.DERNetworks, params, target_params, inputs: LossInputs, key: jax.Array):
    apply, noisy, atoms, encoder = networks.network.apply, networks.has_noise, networks.atoms, networks.encoder
    observations, next_observations = inputs.transitions.observation, inputs.transitions.next_observation
    key_online, key_selector, key_target, key_shift, key_next_shift = jax.random.split(key, 5)
    if encoder.augment is not None:
      observations = encoder.augment(key_shift, observations, self._pad)
      next_observations = encoder.augment(key_next_shift, next_observations, self._pad)
    transitions = inputs.transitions
    logits_tm1, net_state = apply(params, inputs.net_state, key_online, observations, True, noisy)
    logits_t, _ = apply(target_params, inputs.net_state, key_target, next_observations, False, noisy)
    selector_logits, _ = apply(params, inputs.net_state, key_selector, next_observations, False, noisy)
    per_example = categorical_double_q_nstep(
        logits_tm1, atoms, transitions.action.astype(jnp.int32), transitions.reward, transitions.discount,
        jax.lax.stop_gradient(logits_t), atoms, jax.lax.stop_gradient(der_networks.q_values(selector_logits, atoms)))
    return jnp.mean(inputs.weights * per_example), LossExtras(per_example, net_state, encoder.metrics(params))

  def forward(self, networks: der_networks.DERNetworks, params, net_state, transitions, key: jax.Array) -> jax.Array:
    """The return-distribution logits at s_t [B, A, N] in evaluation mode (no noise), what the diagnostics probe."""
    return networks.network.apply(params, net_state, key, transitions.observation, False, False)[0]


def make_learner(networks: der_networks.DERNetworks, config: DERConfig, iterator: Iterator[ReplayBatch],
                 update_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]], seed: int,
                 example_observation: np.ndarray, loss=None, data_parallel=None) -> SGDLearner:
  """DER on the shared learner; `loss` defaults to `CategoricalDoubleQLoss`."""
  init_key, key = jax.random.split(jax.random.PRNGKey(seed))
  params, net_state = networks.network.init(init_key, example_observation[None], True, networks.has_noise)
  settings = LearnerSettings(config.target_update_period, config.importance_sampling_exponent,
                             config.importance_sampling_anneal_steps)
  loss = loss or CategoricalDoubleQLoss(config.augmentation_pad)
  return SGDLearner(networks, loss, make_optimizer(config, networks.encoder), params, net_state, settings, iterator, update_priorities,
                    key, variables_with_state=True, data_parallel=data_parallel,
                    **plasticity_arguments(config, lambda key: networks.network.init(
                        key, example_observation[None], True, networks.has_noise)[0]))
