"""SAC's pure loss pieces (Haarnoja et al. 2018, arXiv 1812.05905): the soft n-step critic target (eq. 5 with
the soft value of eq. 3), the actor's penalised value (eq. 7), the temperature loss (eq. 18) and Polyak
averaging of the target critics; GPL's variants from arXiv 2110.03375 (`repertory.losses.gpl`)."""

from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax

from repertory.losses import gpl


def critic_target(q_targets: jax.Array, reward: jax.Array, discount: jax.Array, next_log_prob: jax.Array,
                  alpha: jax.Array, beta: jax.Array, penalty: str) -> jax.Array:
  """Soft n-step target y [B] from target critics Q̄(s', a') [N, B] (no gradient).

  `discount` is the adder's γ_n = Π γ·d (0 after a termination). "clipped": min over critics;
  "gpl": `losses.gpl.pessimistic_target` (mean − β·u), which equals "clipped" for N = 2, β = 0.5.
  """
  chex.assert_rank([q_targets, reward, discount, next_log_prob], [2, 1, 1, 1])
  if penalty == "gpl":
    return gpl.pessimistic_target(reward, discount, q_targets, next_log_prob, alpha, beta)
  y = reward + discount * (jnp.min(q_targets, axis=0) - alpha * next_log_prob)
  return jax.lax.stop_gradient(y)


def penalised_value(qs: jax.Array, penalty: str, beta: jax.Array) -> jax.Array:
  """The actor's value of (s, ã) from Q [N, B]: min over critics, or mean − β·u (GPL)."""
  chex.assert_rank(qs, 2)
  if penalty == "gpl":
    return jnp.mean(qs, axis=0) - beta * gpl.critic_uncertainty(qs)
  return jnp.min(qs, axis=0)


def temperature_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
  """J(log α) = −mean(log α · SG(log π + H̄)) (arXiv 1812.05905, eq. 18; softlearning on log α)."""
  chex.assert_rank([log_alpha, log_prob], [0, 1])
  return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy))


def polyak_update(online: Any, target: Any, tau: float) -> Any:
  """Q̄ ← τ·Q + (1 − τ)·Q̄ (optax.incremental_update)."""
  return optax.incremental_update(online, target, tau)
