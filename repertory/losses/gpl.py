"""Generalized Pessimism Learning with dual TD (Cetin & Celiktutan, arXiv 2110.03375).

Critic ensemble of N ≥ 2 members; pessimism = β · epistemic-uncertainty estimate u:
  u(s, a) = mean over pairs i<j of |Q_i(s, a) − Q_j(s, a)|      (N = 2: u = |Q1 − Q2|)
  for quantile critics [N, B, K]: mean over pairs of W1(Z_i, Z_j) = mean_k |sort(z_i)_k − sort(z_j)_k|
Pessimistic soft target (the GPL critic target; paper section on GPL / dual TD-learning —
equation numbers not re-checked against the PDF):
  y = r + γ(1−d)(mean_i Q̄_i(s', a') − β·ū(s', a') − α log π(a'|s')),   a' ~ π(·|s')
With N = 2 and β = 0.5, mean − 0.5|Q1 − Q2| = min(Q1, Q2): clipped double-Q is a special case.
Dual TD-learning: β is learned online by minimising
  L(β) = β · SG(mean(Q(s, a) − y)),
so gradient descent lowers β when the critic's predictions exceed their (pessimistic) targets on
average and raises it when they fall below, driving the expected TD error towards 0.
Optional optimistic exploration: the actor uses β + s_t with s_t < 0 annealed linearly to 0.

Defaults follow the authors' later code (not the paper's text): β init 0.5, β optimiser
Adam(lr 1e-4, b1 0.5). The optimism shift is off by default (its initial value was not checked).
"""

import dataclasses
from typing import Optional

import chex
import jax
import jax.numpy as jnp
import optax

from repertory.errors import ConfigError

Array = chex.Array


@dataclasses.dataclass(frozen=True)
class GPLConfig:
  """GPL / dual-TD hyper-parameters (arXiv 2110.03375; defaults from the authors' later code)."""
  beta_init: float = 0.5  # initial pessimism β (= clipped double-Q with two critics).
  beta_lr: float = 1e-4  # Adam learning rate of the dual β.
  beta_b1: float = 0.5  # Adam β1 of the dual β.
  beta_b2: float = 0.999  # Adam β2 (optax default; not given in the source).
  optimism_init: float = 0.0  # s_0 ≤ 0 of the optimistic actor shift; 0 disables it.
  optimism_anneal_steps: int = 0  # steps over which s_t goes linearly from s_0 to 0.


def beta_optimizer(config: GPLConfig = GPLConfig()) -> optax.GradientTransformation:
  """optax.adam for the dual β with the GPL settings."""
  return optax.adam(config.beta_lr, b1=config.beta_b1, b2=config.beta_b2)


def critic_uncertainty(qs: Array) -> Array:
  """Mean pairwise disagreement of N critics (arXiv 2110.03375, uncertainty regulariser).

  Args:
    qs: [N, B] point estimates -> mean_{i<j} |Q_i − Q_j|; or [N, B, K] quantiles (any order)
      -> mean_{i<j} W1(Z_i, Z_j) with W1 = mean_k |sort(z_i)_k − sort(z_j)_k| (equal-weight atoms).

  Returns:
    u, [B]; symmetric in the critics and ≥ 0.
  """
  chex.assert_rank(qs, {2, 3})
  n = qs.shape[0]
  if n < 2:
    raise ConfigError(f"GPL needs at least 2 critics, got {n}; set the ensemble size to >= 2.")
  if qs.ndim == 3:
    qs = jnp.sort(qs, axis=-1)
  diffs = jnp.abs(qs[:, None] - qs[None, :])  # [N, N, B(, K)]
  if qs.ndim == 3:
    diffs = jnp.mean(diffs, axis=-1)
  i, j = jnp.triu_indices(n, k=1)
  return jnp.mean(diffs[i, j], axis=0)


def pessimistic_target(r: Array, discount: Array, q_targets: Array, log_prob: Array,
                       alpha: Array, beta: Array) -> Array:
  """y = r + discount·(mean_i Q_i − β·u − α log π), stop_gradient (arXiv 2110.03375, GPL target).

  Args:
    r: rewards [B]. discount: γ(1 − d), [B] (already includes termination).
    q_targets: target critics at (s', a'), [N, B]. log_prob: log π(a'|s'), [B].
    alpha: entropy temperature (scalar). beta: pessimism (scalar).
  """
  chex.assert_rank([r, discount, q_targets, log_prob], [1, 1, 2, 1])
  chex.assert_equal_shape([r, discount, log_prob, q_targets[0]])
  u = critic_uncertainty(q_targets)
  y = r + discount * (jnp.mean(q_targets, axis=0) - beta * u - alpha * log_prob)
  return jax.lax.stop_gradient(y)


def dual_td_beta_loss(beta: Array, q_pred: Array, target: Array) -> Array:
  """Dual TD loss for β: β · SG(mean(Q − y)) (arXiv 2110.03375, dual TD-learning).

  Args:
    beta: scalar (the learned parameter).
    q_pred: Q(s, a), [B] or [N, B] (averaged over critics).
    target: y, [B].

  d/dβ = mean(Q − y): descent lowers β when the critics over-estimate the target and raises it
  when they under-estimate.
  """
  chex.assert_rank(beta, 0)
  chex.assert_rank([q_pred, target], [{1, 2}, 1])
  gap = jnp.mean(q_pred - target[None] if q_pred.ndim == 2 else q_pred - target)
  return beta * jax.lax.stop_gradient(gap)


def optimistic_shift(step: Array, init: float, anneal_steps: int) -> Array:
  """s_t = init·max(0, 1 − t/anneal_steps): s_0 = init (< 0), linearly annealed to 0.

  The actor then uses β + s_t (arXiv 2110.03375, optimistic exploration). anneal_steps ≤ 0 -> 0.
  """
  if anneal_steps <= 0:
    return jnp.zeros((), jnp.float32)
  frac = jnp.clip(1.0 - jnp.asarray(step, jnp.float32) / anneal_steps, 0.0, 1.0)
  return init * frac


def actor_beta(beta: Array, step: Array, config: Optional[GPLConfig] = None) -> Array:
  """β used by the actor: SG(β) + s_t (no gradient from the actor into the dual variable)."""
  config = config or GPLConfig()
  return jax.lax.stop_gradient(beta) + optimistic_shift(step, config.optimism_init,
                                                         config.optimism_anneal_steps)
