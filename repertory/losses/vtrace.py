"""IMPALA actor-critic loss with V-trace targets (Espeholt et al. 2018, arXiv 1802.01561).

Time-major throughout: arrays are [T, B, ...]. The per-sequence maths is rlax's
(`vtrace_td_error_and_advantage`, rank-1 inputs), vmapped over the batch axis.

V-trace (paper eq. 1, with the recursive form of Remark 1):
  ρ_t = min(ρ̄, π(a_t|x_t)/μ(a_t|x_t)),  c_t = λ·min(1, π/μ)
  δ_t = ρ_t (r_t + γ_t V(x_{t+1}) − V(x_t))
  v_s − V(x_s) = δ_s + γ_s c_s (v_{s+1} − V(x_{s+1})),   v_T = V(x_T) (the bootstrap value).
Policy-gradient advantage (paper Sec. 4.2):
  A_s = min(ρ̄_pg, π/μ)(r_s + γ_s v_{s+1} − V(x_s))   (rlax mixes v_{s+1} with V(x_{s+1}) by λ).
Loss = PG + c_v·½(v_s − V(x_s))² − c_H·entropy, each a masked mean over [T, B]. The targets v_s and
the advantages carry `stop_gradient`.

Episode boundaries: `mask[t, b] = 0` marks a transition that crosses an episode boundary (its reward
and discount are meaningless). At such a step the recursion is cut: the reward is replaced by
SG(V(x_t)) and the discount by 0, so δ_t = 0, v_t = V(x_t), earlier targets bootstrap from V(x_t)
and never see anything after the boundary; the step's own PG / value / entropy terms get weight 0.
"""

from typing import Dict, NamedTuple, Optional, Tuple

import chex
import jax
import jax.numpy as jnp
import rlax

Array = chex.Array

# Defaults and their sources (arXiv 1802.01561):
LAMBDA = 1.0  # λ = 1 in all IMPALA experiments (Sec. 5); < 1 is the paper's Remark/ablation knob.
CLIP_RHO = 1.0  # ρ̄ = 1 (Sec. 4.1, used throughout the experiments).
CLIP_PG_RHO = 1.0  # ρ̄ in the PG advantage = 1 (Sec. 4.2).
BASELINE_COST = 0.5  # c_v = 0.5 ("baseline loss scaling", paper Table G.1, Atari).
ENTROPY_COST = 0.01  # c_H = 0.01 ("entropy regulariser", paper Table G.1, Atari; DMLab samples it).


class VTraceReturns(NamedTuple):
  """Per-step V-trace outputs, each [T, B]."""
  vs: Array  # V-trace value targets v_s.
  pg_advantages: Array  # min(ρ̄_pg, ρ_s)(r_s + γ_s v_{s+1} − V(x_s)).
  errors: Array  # v_s − V(x_s).


def vtrace_returns(values: Array,
                   bootstrap_value: Array,
                   rewards: Array,
                   discounts: Array,
                   rhos: Array,
                   mask: Optional[Array] = None,
                   *,
                   lambda_: float = LAMBDA,
                   clip_rho: float = CLIP_RHO,
                   clip_pg_rho: float = CLIP_PG_RHO,
                   stop_target_gradients: bool = True) -> VTraceReturns:
  """V-trace targets and PG advantages (arXiv 1802.01561 eq. 1 and Sec. 4.2), time-major.

  Args:
    values: V(x_t), [T, B].
    bootstrap_value: V(x_T), [B].
    rewards: r_t, [T, B].
    discounts: γ_t (0 at terminations), [T, B].
    rhos: unclipped importance ratios π(a_t|x_t)/μ(a_t|x_t), [T, B].
    mask: [T, B], 0 at transitions that cross an episode boundary (see module docstring).
    lambda_, clip_rho, clip_pg_rho: λ, ρ̄, ρ̄_pg.
    stop_target_gradients: stop gradients through v_s (keep True for learning; False lets tests
      inspect which inputs a target depends on).

  Returns:
    `VTraceReturns` of [T, B] arrays.
  """
  chex.assert_rank([values, bootstrap_value, rewards, discounts, rhos], [2, 1, 2, 2, 2])
  chex.assert_equal_shape([values, rewards, discounts, rhos])
  chex.assert_equal_shape_suffix([values, bootstrap_value], 1)
  if mask is None:
    mask = jnp.ones_like(rewards)
  chex.assert_equal_shape([mask, rewards])
  mask = mask.astype(values.dtype)

  # Cut the recursion at masked steps: r_t := SG(V(x_t)), γ_t := 0  =>  δ_t = 0, v_t = V(x_t).
  rewards = jnp.where(mask > 0, rewards, jax.lax.stop_gradient(values))
  discounts = jnp.where(mask > 0, discounts, 0.0)

  v_t = jnp.concatenate([values[1:], bootstrap_value[None]], axis=0)
  out = jax.vmap(
      lambda v_tm1, v_t, r, d, rho: rlax.vtrace_td_error_and_advantage(
          v_tm1, v_t, r, d, rho, lambda_=lambda_, clip_rho_threshold=clip_rho,
          clip_pg_rho_threshold=clip_pg_rho, stop_target_gradients=stop_target_gradients),
      in_axes=1, out_axes=1)(values, v_t, rewards, discounts, rhos)
  vs = out.errors + values
  if stop_target_gradients:
    vs = jax.lax.stop_gradient(vs)
  return VTraceReturns(vs=vs, pg_advantages=out.pg_advantage, errors=out.errors)


def masked_mean(x: Array, mask: Array) -> Array:
  """Σ x·mask / max(Σ mask, 1): the mean over the unmasked entries."""
  chex.assert_equal_shape([x, mask])
  return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def vtrace_actor_critic_loss(logits: Array,
                             values: Array,
                             bootstrap_value: Optional[Array],
                             actions: Array,
                             behaviour_logits: Array,
                             rewards: Array,
                             discounts: Array,
                             mask: Optional[Array] = None,
                             *,
                             lambda_: float = LAMBDA,
                             clip_rho: float = CLIP_RHO,
                             clip_pg_rho: float = CLIP_PG_RHO,
                             baseline_cost: float = BASELINE_COST,
                             entropy_cost: float = ENTROPY_COST) -> Tuple[Array, Dict[str, Array]]:
  """IMPALA loss: V-trace PG + c_v·½(v_s − V)² − c_H·H(π) (arXiv 1802.01561 eq. 1, Sec. 4.2).

  Args:
    logits: learner policy logits, [T, B, A] or [T+1, B, A] (the last step is dropped).
    values: V(x_t), [T, B] or [T+1, B]; with T+1 steps and `bootstrap_value=None` the last row is
      the bootstrap value.
    bootstrap_value: V(x_T), [B], or None (see `values`).
    actions: a_t, int [T, B].
    behaviour_logits: actor (μ) logits stored with the sequence, [T, B, A].
    rewards, discounts: r_t, γ_t, [T, B].
    mask: [T, B]; 0 marks a transition that crosses an episode boundary (contributes nothing and
      cuts the V-trace recursion). Defaults to all ones.
    lambda_, clip_rho, clip_pg_rho, baseline_cost, entropy_cost: see module defaults.

  Returns:
    (scalar loss, metrics) where metrics holds the scalar loss terms and the [T, B] arrays
    `vs` (targets), `pg_advantages` and `rhos`.
  """
  chex.assert_rank([actions, behaviour_logits, rewards, discounts], [2, 3, 2, 2])
  chex.assert_equal_shape([actions, rewards, discounts])
  num_steps = actions.shape[0]
  if bootstrap_value is None:
    chex.assert_axis_dimension(values, 0, num_steps + 1)
    bootstrap_value = values[-1]
  values = values[:num_steps]
  logits = logits[:num_steps]
  chex.assert_rank([logits, values, bootstrap_value], [3, 2, 1])
  chex.assert_equal_shape([logits, behaviour_logits])
  chex.assert_equal_shape([values, rewards])
  if mask is None:
    mask = jnp.ones_like(rewards)
  chex.assert_equal_shape([mask, rewards])
  mask = mask.astype(values.dtype)

  rhos = rlax.categorical_importance_sampling_ratios(
      logits, jax.lax.stop_gradient(behaviour_logits), actions)
  rhos = jax.lax.stop_gradient(rhos)
  returns = vtrace_returns(values, bootstrap_value, rewards, discounts, rhos, mask,
                           lambda_=lambda_, clip_rho=clip_rho, clip_pg_rho=clip_pg_rho)
  pg_advantages = jax.lax.stop_gradient(returns.pg_advantages)

  # rlax per-sequence losses (mean over time of loss·w), vmapped over batch; re-normalised so the
  # result is the masked mean over [T, B].
  norm = mask.size / jnp.maximum(jnp.sum(mask), 1.0)
  pg_loss = norm * jnp.mean(
      jax.vmap(rlax.policy_gradient_loss, in_axes=1)(logits, actions, pg_advantages, mask))
  entropy_loss = norm * jnp.mean(jax.vmap(rlax.entropy_loss, in_axes=1)(logits, mask))
  value_errors = returns.vs - values  # targets already carry stop_gradient.
  baseline_loss = masked_mean(0.5 * jnp.square(value_errors), mask)

  loss = pg_loss + baseline_cost * baseline_loss + entropy_cost * entropy_loss
  metrics = {
      "loss": loss,
      "pg_loss": pg_loss,
      "baseline_loss": baseline_loss,
      "entropy": -entropy_loss,
      "mean_rho": masked_mean(rhos, mask),
      "vs": returns.vs,
      "pg_advantages": pg_advantages,
      "rhos": rhos,
  }
  return loss, metrics
