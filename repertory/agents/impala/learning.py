"""The IMPALA learner: V-trace actor-critic on batches of stored sequences (arXiv 1802.01561, Sec. 4).

Per batch of sequences (see `repertory.replay.sequence_adder` for the item layout):
  1. unroll the network from each sequence's stored core state, resetting where `reset` is set;
  2. V-trace targets and PG advantages against the stored behaviour logits, the transition that
     crosses an episode boundary masked (`repertory.losses.vtrace.vtrace_actor_critic_loss`),
     discounts γ·d_t;
  3. optional terms:
     * KL to a learned default policy (arXiv 1905.01240): r̃ = r − α·SG(KL(π‖π0)) in V-trace,
       + α·KL(π‖SG(π0)) + KL(SG(π)‖π0) (`repertory.losses.kl_default_policy`);
     * policy distillation from a teacher run (arXiv 1902.02186; `repertory.losses.distillation`).
       The teacher is unrolled on the same observations from its own initial state at each sequence
       start (the actors do not run the teacher, so its recurrent state is not stored; this is exact
       for a feed-forward teacher and at episode starts);
     * the PPR policy-matching aux loss (arXiv 2006.15223; `repertory.losses.ppr_aux`), optionally
       combined by gradient similarity g_main + max(0, cos)·g_aux (arXiv 1812.02224,
       `repertory.losses.gradient_similarity`); the cosine is taken over all parameters (the value
       head, which the aux loss does not touch, adds only to ‖g_main‖).
  4. global-norm clipping, then RMSProp (or Adam).
Plasticity (`repertory.plasticity`): injection into the heads at `injection_step`; scheduled resets per period;
Top-KAST layers (`layer_kind=topkast`, arXiv 2106.03517) in the MLP torso add their exploration penalty (§2.3)
to the main loss.
"""

from typing import Any, Dict, Iterator, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import optax

from repertory.agents.data_parallel import DataParallel
from repertory.agents.learner_base import LearnerBase, jit_reset
from repertory.agents.impala.config import IMPALAConfig
from repertory.agents.impala.networks import IMPALANetworks
from repertory.errors import ConfigError
from repertory.losses import distillation, gradient_similarity, kl_default_policy, ppr_aux, vtrace
from repertory.plasticity import injection
from repertory.plasticity.diagnostics import Diagnostics, make_diagnose
from repertory.plasticity.resets import ResetSchedule, apply_reset
from repertory.replay.types import ReplayBatch


class TrainingState(NamedTuple):
  params: Any
  opt_state: Any
  steps: jax.Array


def make_optimizer(config: IMPALAConfig) -> optax.GradientTransformation:
  if config.optimizer == "rmsprop":
    # TF1's RMSProp (the paper's) adds ε inside the square root: eps_in_sqrt=True.
    opt = optax.rmsprop(config.learning_rate, decay=config.rmsprop_decay, eps=config.rmsprop_epsilon,
                        momentum=config.rmsprop_momentum or None, eps_in_sqrt=True)
  else:
    opt = optax.adam(config.learning_rate, eps=config.adam_epsilon)
  return optax.chain(optax.clip_by_global_norm(config.max_gradient_norm), opt)


def time_major(x: jax.Array) -> jax.Array:  # [B, T, ...] → [T, B, ...]
  return jnp.swapaxes(x, 0, 1)


def unflatten_state(networks: IMPALANetworks, params: Any, leaves: Tuple[Any, ...], batch_size: int) -> Any:
  """Stored core-state leaves [B, ...] → the core's state structure (a stateless core stores a dummy)."""
  like = networks.initial_state(params, batch_size)
  treedef = jax.tree.structure(like)
  if treedef.num_leaves == 0:
    return like
  return jax.tree.unflatten(treedef, list(leaves))


def sequence_loss(networks: IMPALANetworks, config: IMPALAConfig, params: Any, data: Any,
                  teacher: Optional[Tuple[IMPALANetworks, Any]] = None) -> Tuple[jax.Array, jax.Array, Dict[str, jax.Array]]:
  """(main loss, PPR aux loss, metrics) for a batch `data` of sequences ([B, T(+1), ...]).

  Metrics are scalars except `vs` and `rhos` ([T, B]) and `values` ([T+1, B]), kept for tests.
  """
  batch_size = data.reward.shape[0]
  observations = jax.tree.map(time_major, data.observation)  # [T+1, B, ...]
  resets = time_major(data.reset)  # [T+1, B]
  state = unflatten_state(networks, params, data.core_state, batch_size)
  out = networks.unroll(params, observations, state, resets)
  actions = time_major(data.action).astype(jnp.int32)  # [T, B]
  num_steps = actions.shape[0]
  rewards = time_major(data.reward)
  if config.reward_clip > 0:
    rewards = jnp.clip(rewards, -config.reward_clip, config.reward_clip)
  discounts = config.discount * time_major(data.discount)
  mask = time_major(data.mask)
  behaviour_logits = time_major(data.behaviour_logits)
  logits = out.logits[:num_steps]

  extra = jnp.zeros(())
  metrics: Dict[str, jax.Array] = {}
  if config.default_policy_kl_weight > 0:
    alpha = config.default_policy_kl_weight
    default_logits = out.default_logits[:num_steps]
    rewards = kl_default_policy.regularised_reward(rewards, logits, default_logits, alpha)
    policy_kl = kl_default_policy.policy_kl_loss(logits, default_logits, mask, alpha)
    default_loss = kl_default_policy.default_policy_loss(logits, default_logits, mask)
    extra = extra + policy_kl + default_loss
    metrics.update(policy_kl_loss=policy_kl, default_policy_loss=default_loss)

  loss, vt = vtrace.vtrace_actor_critic_loss(
      out.logits, out.values, None, actions, behaviour_logits, rewards, discounts, mask,
      lambda_=config.vtrace_lambda, clip_rho=config.clip_rho, clip_pg_rho=config.clip_pg_rho,
      baseline_cost=config.baseline_cost, entropy_cost=config.entropy_cost)
  metrics.update({k: vt[k] for k in ("pg_loss", "baseline_loss", "entropy", "mean_rho", "vs", "rhos")})
  metrics["values"] = out.values

  if teacher is not None and config.distillation_kind != "none":
    teacher_networks, teacher_params = teacher
    teacher_state = teacher_networks.initial_state(teacher_params, batch_size)
    teacher_logits = teacher_networks.unroll(teacher_params, observations, teacher_state, resets).logits
    teacher_logits = jax.lax.stop_gradient(teacher_logits[:num_steps])
    distill, dm = distillation.distillation_loss(config.distillation_kind, logits, teacher_logits, mask,
                                                 actions, discounts * mask)
    extra = extra + config.distillation_weight * distill
    metrics.update(distillation_loss=distill)

  aux = jnp.zeros(())
  if config.ppr_aux_weight > 0:
    if out.core_logits is None:
      raise ConfigError("ppr_aux_weight > 0 needs a core that returns PPROutput (core=ppr)")
    aux, pm = ppr_aux.ppr_aux_loss({k: v[:num_steps] for k, v in out.core_logits.items()}, mask,
                                   direction=config.ppr_aux_direction, beta=config.ppr_aux_weight)
    metrics.update(ppr_aux_loss=aux)
  main = loss + extra
  topkast_penalty = config.weight_penalty()  # Top-KAST layers' exploration penalty (arXiv 2106.03517, §2.3)
  if topkast_penalty is not None:
    main = main + topkast_penalty(params)
  metrics["loss"] = main + aux
  return main, aux, metrics


def _diagnosed(networks: IMPALANetworks, config: IMPALAConfig, teacher_networks: Optional[IMPALANetworks]):
  """The diagnostics' (forward, loss gradient) on a probe batch of sequences; the forward is one acting step
  from each sequence's first observation and stored core state ((logits [B, A], values [B])); the "state"
  they are given is the teacher's parameters (None without a teacher)."""

  def forward(params, teacher_params, data, key):
    del teacher_params, key
    first = jax.tree.map(lambda x: x[:, 0], data.observation)
    state = unflatten_state(networks, params, data.core_state, data.reward.shape[0])
    logits, values, _ = networks.step(params, first, state, data.reset[:, 0])
    return logits, values

  def loss_grads(params, teacher_params, data, key):
    del key
    teacher = (teacher_networks, teacher_params) if teacher_networks is not None else None
    return jax.grad(lambda p: sum(sequence_loss(networks, config, p, data, teacher)[:2]))(params)

  return forward, loss_grads


class IMPALALearner(LearnerBase):
  """One SGD step per batch of `batch_size` sequences from the (FIFO) iterator."""

  def __init__(self, networks: IMPALANetworks, config: IMPALAConfig, iterator: Iterator[ReplayBatch], seed: int,
               teacher: Optional[Tuple[IMPALANetworks, Any]] = None, data_parallel: Optional[DataParallel] = None):
    devices = self._use_devices(data_parallel)
    self._config = config
    self._iterator = iterator
    self._networks = networks
    self._optimizer = make_optimizer(config)
    if config.injection_step:
      self._injection = injection.InjectionSchedule(config.injection_step)
      self._optimizer = optax.chain(self._optimizer, injection.freeze_by_injection())
    params = networks.init(jax.random.PRNGKey(seed))
    self._state = devices.replicate(TrainingState(params, self._optimizer.init(params), jnp.zeros((), jnp.int32)))
    self._steps = 0
    teacher_params = teacher[1] if teacher is not None else None
    teacher_networks = teacher[0] if teacher is not None else None

    def grads_and_metrics(params, data, teacher_params):
      t = (teacher_networks, teacher_params) if teacher_networks is not None else None
      if config.gradient_similarity == "none":
        def total(p):
          main, aux, metrics = sequence_loss(networks, config, p, data, t)
          return main + aux, metrics
        return jax.grad(total, has_aux=True)(params)
      def main_loss(p):
        main, _, metrics = sequence_loss(networks, config, p, data, t)
        return main, metrics

      def aux_loss(p):
        return sequence_loss(networks, config, p, data, t)[1]

      g_main, metrics = jax.grad(main_loss, has_aux=True)(params)
      g_aux = jax.grad(aux_loss)(params)
      grads, cos = gradient_similarity.combine_gradients(g_main, g_aux, weighted=config.gradient_similarity == "weighted")
      metrics = dict(metrics, aux_gradient_cosine=cos)
      return grads, metrics

    def sgd_step(state: TrainingState, data, teacher_params):
      grads, metrics = grads_and_metrics(state.params, data, teacher_params)
      updates, opt_state = self._optimizer.update(grads, state.opt_state, state.params)
      params = optax.apply_updates(state.params, updates)
      metrics = {k: v for k, v in metrics.items() if jnp.ndim(v) == 0}
      metrics["gradient_norm"] = optax.global_norm(grads)
      return TrainingState(params, opt_state, state.steps + 1), metrics

    forward, loss_grads = _diagnosed(networks, config, teacher_networks)
    if config.diagnostics_period:
      self._diagnostics = Diagnostics(make_diagnose(forward, loss_grads, self._optimizer,
                                                    config.diagnostics_settings()), config.diagnostics_period)
    recurrent = config.core != "none"  # ReDo leaves a recurrent core's units alone (redo.redo_reset)
    reset, period = config.reset(networks.init, recycles=lambda layer: not (
        recurrent and layer.startswith(networks.core_module)))
    if reset is not None:  # ReDo scores units on one acting step from the batch's first observations
      def reset_state(state: TrainingState, data):
        key = jax.random.fold_in(jax.random.PRNGKey(seed + 1), state.steps)
        params, opt_state = apply_reset(reset, self._optimizer, state.params, state.opt_state, key,
                                        lambda p, d: forward(p, None, d, key), (data,))
        return state._replace(params=params, opt_state=opt_state)

      self._reset = jit_reset(reset_state, devices)
      self._reset_schedule = ResetSchedule(period)
    self._teacher_params = devices.replicate(teacher_params)
    self._sgd_step = jax.jit(sgd_step, in_shardings=(devices.replicated, devices.batch(axis=0), devices.replicated),
                             out_shardings=devices.replicated)

  def step(self) -> Dict[str, Any]:
    if self._inject_due():
      self._state = self.data_parallel.replicate(self._host_copy(self._state._replace(
          params=injection.inject(self._state.params))))
    batch = next(self._iterator)
    if self._reset_due():
      self._state = self._reset(self._state, batch.data)
    data = self.data_parallel.shard(batch.data)
    self._state, metrics = self._sgd_step(self._state, data, self._teacher_params)
    self._steps += 1
    if self._diagnostics is not None:
      self._diagnostics.observe(self._steps, batch.data, self._state.params, self._teacher_params,
                                self._state.opt_state)
    return metrics
