"""The SAC learner (Haarnoja et al. 2018, arXiv 1812.05905, Algorithm 1 with automatic temperature).

One update on a batch of n-step transitions (s, a, R, γ_n, s'), with α = exp(log α):

* Critics (eq. 5 with the soft value of eq. 3): a' ~ π(·|s'),
    clipped: y = R + γ_n (min_i Q̄_i(s', a') − α log π(a'|s'))       (clipped double-Q, SAC v2)
    gpl:     y = R + γ_n (mean_i Q̄_i − β·u(s', a') − α log π(a'|s'))  (arXiv 2110.03375; losses.gpl)
  J_Q = Σ_i E[½(Q_i(s, a) − y)²]; the encoder (pixels) is trained by this loss only.
* Actor (eq. 7, reparameterised): J_π = E[α log π(ã|s) − V_pen(s, ã)], ã ~ π(·|s), with
  V_pen = min_i Q_i (clipped) or mean_i Q_i − (SG(β) + s_t)·u (gpl; s_t the optional optimistic shift).
  The actor sees stop-gradient encoder features.
* Plasticity injection (`repertory.plasticity.injection`, arXiv 2305.15555 eq. 1) into the heads of the actor and
  of the online and target critics before the first update at or past `injection_step`.
* Top-KAST layers (`layer_kind=topkast`, arXiv 2106.03517): their exploration penalty (§2.3) is added to the
  critics' loss (critic layers) and the actor's (actor layers).
* Plasticity resets (`repertory.plasticity.resets`) on the first update of every period: shrink-and-perturb of
  the encoder, critics and actor; ReDo of the encoder and critics, scored on Q at a replay batch's (s, a).
* Temperature (eq. 18): J(α) = E[−log α · SG(log π(ã|s) + H̄)], H̄ = −|A| (target entropy), as the
  authors' softlearning code (gradient on log α). Descent raises α while the entropy is below H̄.
* GPL β (dual TD, arXiv 2110.03375): L(β) = β·SG(mean(Q − y)) with Adam(1e-4, b1 0.5) (`losses.gpl`).
* Targets: Polyak averaging Q̄ ← τ Q + (1 − τ) Q̄ after every update, τ = 0.005 (Table 1).
  As DrQ-v2 (arXiv 2107.09645), the encoder has no target copy: s' is encoded by the online encoder
  under stop-gradient.
"""

from typing import Any, Dict, Iterator, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from repertory.agents.data_parallel import DataParallel
from repertory.agents.learner_base import LearnerBase, jit_reset
from repertory.agents.sac import networks as sac_networks
from repertory.agents.sac.config import SACConfig
from repertory.agents.sac.losses import critic_target, penalised_value, polyak_update, temperature_loss
from repertory.losses import gpl
from repertory.networks.encoders import Encoder
from repertory.plasticity import injection
from repertory.plasticity.diagnostics import Diagnostics, make_diagnose
from repertory.plasticity.resets import ResetSchedule
from repertory.replay.types import ReplayBatch


class TrainingState(NamedTuple):
  encoder_params: Any
  critic_params: Any
  actor_params: Any
  target_critic_params: Any
  log_alpha: jax.Array
  beta: jax.Array  # GPL pessimism (kept, unused, with penalty="clipped")
  critic_opt_state: Any  # encoder + critics
  actor_opt_state: Any
  alpha_opt_state: Any
  beta_opt_state: Any
  key: jax.Array
  steps: jax.Array


def make_critic_optimizer(config: SACConfig, image_encoder: Optional[Encoder]) -> optax.GradientTransformation:
  """Adam for encoder + critics, wrapped as a pixel encoder needs (A-LIX: S gets its own Adam)."""
  if image_encoder is None:
    return optax.adam(config.learning_rate)
  return image_encoder.wrap_optimizer(optax.adam(config.pixel_learning_rate))


def soft_td_target(networks: sac_networks.SACNetworks, state: TrainingState, next_observations: jax.Array,
                   transitions: Any, penalty: str, encoder_key: jax.Array, action_key: jax.Array) -> jax.Array:
  """The critics' target y [B]: a' ~ π(·|s'), the target critics at (s', a'), the penalty (eq. 5 / GPL)."""
  next_features = jax.lax.stop_gradient(networks.encoder.apply(state.encoder_params, encoder_key, next_observations,
                                                               True))
  next_dist = sac_networks.tanh_gaussian(*networks.actor.apply(state.actor_params, None, next_features))
  next_actions, next_log_prob = next_dist.sample_and_log_prob(seed=action_key)
  q_next = networks.critic.apply(state.target_critic_params, None, next_features, next_actions)
  return critic_target(q_next, transitions.reward, transitions.discount, next_log_prob, jnp.exp(state.log_alpha),
                       state.beta, penalty)


def critic_loss(networks: sac_networks.SACNetworks, encoder_and_critic: Any, observations: jax.Array,
                actions: jax.Array, target: jax.Array, encoder_key: jax.Array):
  """(J_Q = Σ_i mean_b ½(Q_i(s, a) − y)², (Q [N, B], features)); actions in [−1, 1]."""
  encoder_params, critic_params = encoder_and_critic
  features = networks.encoder.apply(encoder_params, encoder_key, observations, True)
  qs = networks.critic.apply(critic_params, None, features, actions)
  return 0.5 * jnp.sum(jnp.mean(jnp.square(qs - target[None]), axis=1)), (qs, features)


def _diagnosed(networks: sac_networks.SACNetworks, config: SACConfig):
  """The diagnostics' (forward, loss gradient, layers fed inputs) for the encoder and critics (the parameters the
  TD loss trains): Q [N, B] at the probe's (s, a) with the encoder in evaluation mode, and ∇J_Q."""

  def unit_actions(transitions):
    return networks.to_unit_action(transitions.action.reshape(transitions.reward.shape[0], -1).astype(jnp.float32))

  def forward(encoder_and_critic, state, transitions, key):
    del state
    encoder_params, critic_params = encoder_and_critic
    features = networks.encoder.apply(encoder_params, key, transitions.observation, False)
    qs = networks.critic.apply(critic_params, None, features, unit_actions(transitions))  # [N, B]
    return qs.T  # batch first, as the probes read outputs

  def loss_grads(encoder_and_critic, state, transitions, key):
    encoder_key, action_key = jax.random.split(key)
    target = soft_td_target(networks, state, transitions.next_observation, transitions, config.penalty,
                            encoder_key, action_key)
    loss = lambda p: critic_loss(networks, p, transitions.observation, unit_actions(transitions), target,
                                 encoder_key)[0]
    return jax.grad(loss)(encoder_and_critic)

  def reads_inputs(layer: str) -> bool:  # without an image trunk the critics' MLPs read concat(s, a)
    return not networks.image and layer.startswith("q_") and layer.endswith("/linear_0")

  return forward, loss_grads, reads_inputs


def _reset_state(config: SACConfig, initialise, forward, critic_optimizer: optax.GradientTransformation):
  """(state, transitions) → state after the configured reset: shrink-and-perturb of the encoder, critics and
  actor, or ReDo of the encoder and critics (their modules as one dict; the critics' first layers read
  [features, action] and are never producers' consumers), with their optimiser moments where ReDo zeroes them."""
  merge = lambda encoder_params, critic_params: {**encoder_params, **critic_params}  # noqa: E731
  fresh = (lambda key: merge(*initialise(key)[:2])) if config.redo_period else initialise
  reset, _ = config.reset(fresh, reads_inputs=lambda layer: layer.startswith("q_") and layer.endswith("/linear_0"))

  def reset_state(state: TrainingState, transitions):
    key = jax.random.fold_in(state.key, state.steps)
    if config.shrink_perturb_period:
      (encoder_params, critic_params, actor_params), _ = reset(
          (state.encoder_params, state.critic_params, state.actor_params), key, None, ())
      return state._replace(encoder_params=encoder_params, critic_params=critic_params, actor_params=actor_params)
    encoder_modules = set(state.encoder_params)
    split = lambda merged: ({m: v for m, v in merged.items() if m in encoder_modules},  # noqa: E731
                            {m: v for m, v in merged.items() if m not in encoder_modules})
    merged, recycled = reset(merge(state.encoder_params, state.critic_params), key,
                             lambda params, t: forward(split(params), state, t, key), (transitions,))
    encoder_params, critic_params = split(merged)
    opt_state = state.critic_opt_state
    if recycled is not None:
      from repertory.plasticity.redo import reset_moments
      opt_state = reset_moments(critic_optimizer, opt_state, split(recycled))
    return state._replace(encoder_params=encoder_params, critic_params=critic_params, critic_opt_state=opt_state)

  return reset_state


class SACLearner(LearnerBase):
  """Samples a batch and takes one critic, actor, temperature (and β) update per `step()`."""

  def __init__(self, networks: sac_networks.SACNetworks, config: SACConfig, iterator: Iterator[ReplayBatch],
               seed: int, example_observation: np.ndarray, data_parallel: Optional[DataParallel] = None):
    devices = self._use_devices(data_parallel)
    self._config = config
    self._iterator = iterator
    self._networks = networks
    image = networks.image
    gpl_config = config.gpl_config()
    target_entropy = config.target_entropy_per_action_dim * networks.action_dim
    self.target_entropy = target_entropy
    actor_lr = config.pixel_learning_rate if image else config.learning_rate
    image_encoder = networks.image_encoder if image else None
    critic_optimizer = make_critic_optimizer(config, image_encoder)
    actor_optimizer = optax.adam(actor_lr)
    if config.injection_step:  # θ trains until T, θ′ after it, θ″ never (eq. 1)
      self._injection = injection.InjectionSchedule(config.injection_step)
      critic_optimizer = optax.chain(critic_optimizer, injection.freeze_by_injection())
      actor_optimizer = optax.chain(actor_optimizer, injection.freeze_by_injection())
    alpha_optimizer = optax.adam(config.temperature_learning_rate)
    beta_optimizer = gpl.beta_optimizer(gpl_config)
    encoder, actor, critic = networks.encoder, networks.actor, networks.critic

    observations = jnp.asarray(example_observation)[None]

    def initialise_from(k_enc: jax.Array, k_actor: jax.Array, k_critic: jax.Array):
      """Fresh (encoder, critic, actor) parameters."""
      encoder_params = encoder.init(k_enc, observations, True)
      features = encoder.apply(encoder_params, k_enc, observations, False)
      return (encoder_params, critic.init(k_critic, features, jnp.zeros((1, networks.action_dim), jnp.float32)),
              actor.init(k_actor, features))

    def initialise(key: jax.Array):
      return initialise_from(*jax.random.split(key, 3))

    key, *init_keys = jax.random.split(jax.random.PRNGKey(seed), 4)  # the same keys as before resets existed
    encoder_params, critic_params, actor_params = initialise_from(*init_keys)
    log_alpha = jnp.asarray(np.log(config.init_temperature), jnp.float32)
    beta = jnp.asarray(config.beta_init, jnp.float32)
    self._state = devices.replicate(TrainingState(
        encoder_params, critic_params, actor_params, critic_params, log_alpha, beta,
        critic_optimizer.init((encoder_params, critic_params)), actor_optimizer.init(actor_params),
        alpha_optimizer.init(log_alpha), beta_optimizer.init(beta), key, jnp.zeros((), jnp.int32)))
    self._steps = 0
    penalty = config.penalty
    topkast_penalty = config.weight_penalty()  # Top-KAST layers' exploration penalty (arXiv 2106.03517, §2.3)
    weight_penalty = (lambda params: 0.0) if topkast_penalty is None else topkast_penalty

    def sgd_step(state: TrainingState, transitions) -> tuple:
      key, k_enc, k_enc_next, k_next, k_pi, k_aug, k_aug_next = jax.random.split(state.key, 7)
      observations, next_observations = transitions.observation, transitions.next_observation
      if image_encoder is not None and image_encoder.augment is not None:
        observations = image_encoder.augment(k_aug, observations, config.random_shift_pad)
        next_observations = image_encoder.augment(k_aug_next, next_observations, config.random_shift_pad)
      batch = transitions.reward.shape[0]
      actions = networks.to_unit_action(transitions.action.reshape(batch, -1).astype(jnp.float32))
      alpha = jnp.exp(state.log_alpha)

      target = soft_td_target(networks, state, next_observations, transitions, penalty, k_enc_next, k_next)
      def critic_loss_fn(params):
        loss, aux = critic_loss(networks, params, observations, actions, target, k_enc)
        return loss + weight_penalty(params[1]), aux

      (critic_loss_value, (qs, features)), grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
          (state.encoder_params, state.critic_params))
      updates, critic_opt_state = critic_optimizer.update(grads, state.critic_opt_state,
                                                          (state.encoder_params, state.critic_params))
      encoder_params, critic_params = optax.apply_updates((state.encoder_params, state.critic_params), updates)

      # Actor on stop-gradient features with the updated critics.
      features = jax.lax.stop_gradient(features)
      beta_actor = gpl.actor_beta(state.beta, state.steps, gpl_config)

      def actor_loss_fn(actor_params):
        dist = sac_networks.tanh_gaussian(*actor.apply(actor_params, None, features))
        sampled, log_prob = dist.sample_and_log_prob(seed=k_pi)
        value = penalised_value(critic.apply(critic_params, None, features, sampled), penalty, beta_actor)
        return jnp.mean(alpha * log_prob - value) + weight_penalty(actor_params), log_prob

      (actor_loss, log_prob), actor_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(state.actor_params)
      actor_updates, actor_opt_state = actor_optimizer.update(actor_grads, state.actor_opt_state, state.actor_params)
      actor_params = optax.apply_updates(state.actor_params, actor_updates)

      alpha_loss, alpha_grad = jax.value_and_grad(temperature_loss)(state.log_alpha, log_prob, target_entropy)
      alpha_update, alpha_opt_state = alpha_optimizer.update(alpha_grad, state.alpha_opt_state)
      log_alpha = optax.apply_updates(state.log_alpha, alpha_update)

      gap = jnp.mean(jax.lax.stop_gradient(qs) - target[None])
      if penalty == "gpl":
        beta_grad = jax.grad(gpl.dual_td_beta_loss)(state.beta, jax.lax.stop_gradient(qs), target)
        beta_update, beta_opt_state = beta_optimizer.update(beta_grad, state.beta_opt_state)
        beta = optax.apply_updates(state.beta, beta_update)
      else:
        beta, beta_opt_state = state.beta, state.beta_opt_state

      target_critic_params = polyak_update(critic_params, state.target_critic_params, config.tau)
      new_state = TrainingState(encoder_params, critic_params, actor_params, target_critic_params, log_alpha, beta,
                                critic_opt_state, actor_opt_state, alpha_opt_state, beta_opt_state, key,
                                state.steps + 1)
      metrics = {"loss": critic_loss_value, "actor_loss": actor_loss, "alpha_loss": alpha_loss, "alpha": alpha,
                 "beta": state.beta, "entropy": -jnp.mean(log_prob), "q_mean": jnp.mean(qs), "td_gap": gap}
      if image_encoder is not None:
        metrics.update(image_encoder.metrics(encoder_params))
      return new_state, metrics

    self._sgd_step = jax.jit(sgd_step, in_shardings=(devices.replicated, devices.batch(axis=0)),
                             out_shardings=devices.replicated)
    forward, loss_grads, reads_inputs = _diagnosed(networks, config)
    self._inject = jax.jit(lambda state: state._replace(
        critic_params=injection.inject(state.critic_params), actor_params=injection.inject(state.actor_params),
        target_critic_params=injection.inject(state.target_critic_params)),
        in_shardings=devices.replicated, out_shardings=devices.replicated)
    if config.shrink_perturb_period or config.redo_period:
      self._reset = jit_reset(_reset_state(config, initialise, forward, critic_optimizer), devices)
      self._reset_schedule = ResetSchedule(config.shrink_perturb_period or config.redo_period)
    if config.diagnostics_period:
      self._diagnostics = Diagnostics(make_diagnose(forward, loss_grads, critic_optimizer,
                                                    config.diagnostics_settings(), reads_inputs),
                                      config.diagnostics_period)

  def step(self) -> Dict[str, Any]:
    """One update; metrics stay on the device."""
    batch = next(self._iterator)
    if self._inject_due():
      self._state = self._inject(self._state)
    if self._reset_due():
      self._state = self._reset(self._state, batch.data)
    self._state, metrics = self._sgd_step(self._state, self.data_parallel.shard(batch.data))
    self._steps += 1
    if self._diagnostics is not None:
      self._diagnostics.observe(self._steps, batch.data, (self._state.encoder_params, self._state.critic_params),
                                self._state, self._state.critic_opt_state)
    return metrics

  def _injectable_params(self) -> Any:
    return {**self._state.critic_params, **self._state.actor_params}

  def get_variables(self) -> Dict[str, Any]:
    """What actors need: the encoder and the actor."""
    return {"encoder": self._state.encoder_params, "actor": self._state.actor_params}
