"""KL regularisation towards a learned default policy (Galashov et al. 2019, arXiv 1905.01240).

Objective (the paper's KL-regularised expected reward, Sec. 2; equation numbering not re-checked
against the PDF):
  L(π, π0) = E_π[ Σ_t γ^t ( r_t − α·KL(π(·|x_t) ‖ π0(·|x^D_t)) ) ],
where π0 sees only a restricted view x^D of the state ("information asymmetry").

How it is optimised here (paper Sec. 3/4; not re-checked against the PDF):
  * critic and policy gradient use the regularised reward  r̃_t = r_t − α·SG(KL_t)   (≤ r_t);
  * the policy additionally gets the analytic term  α·KL(π ‖ SG(π0))  at every step;
  * the default policy π0 is trained only by  KL(SG(π) ‖ π0)  (it receives no RL gradient).
All KLs are between categorical distributions given by logits ([..., A]), via
`rlax.categorical_kl_divergence`.
"""

import dataclasses
from typing import Optional

import chex
import jax
import jax.numpy as jnp
import rlax

from repertory.losses.vtrace import masked_mean

Array = chex.Array

# α: the paper sweeps the regularisation strength per domain rather than fixing one value; we
# chose α = 0.01, a conservative value that keeps r̃ close to r for rewards of order 1
# (not confirmed against the paper's appendix tables: treat as a tunable knob).
ALPHA = 0.01


@dataclasses.dataclass(frozen=True)
class KLDefaultPolicyConfig:
  """Hyper-parameters of the default-policy regulariser (arXiv 1905.01240)."""
  alpha: float = ALPHA  # KL weight α in r̃ = r − α·KL (see ALPHA for the source note).
  default_policy_cost: float = 1.0  # weight of KL(SG(π) ‖ π0); only π0 sees this gradient.


def kl_to_default(policy_logits: Array, default_logits: Array) -> Array:
  """Per-step KL(π(·|x_t) ‖ π0(·|x^D_t)) (arXiv 1905.01240, Sec. 2 objective); [..., A] -> [...]."""
  chex.assert_equal_shape([policy_logits, default_logits])
  return rlax.categorical_kl_divergence(policy_logits, default_logits)


def regularised_reward(rewards: Array, policy_logits: Array, default_logits: Array,
                       alpha: float = ALPHA) -> Array:
  """r̃_t = r_t − α·SG(KL(π ‖ π0)) (arXiv 1905.01240, Sec. 2); rewards [T, B], logits [T, B, A].

  KL ≥ 0 and α ≥ 0, so r̃ ≤ r. No gradient flows through r̃ into π or π0.
  """
  chex.assert_rank([rewards, policy_logits], [2, 3])
  chex.assert_equal_shape_prefix([rewards, policy_logits], 2)
  kl = jax.lax.stop_gradient(kl_to_default(policy_logits, default_logits))
  return rewards - alpha * kl


def policy_kl_loss(policy_logits: Array, default_logits: Array, mask: Optional[Array] = None,
                   alpha: float = ALPHA) -> Array:
  """Policy's analytic regulariser α·KL(π ‖ SG(π0)), masked mean over [T, B] (arXiv 1905.01240)."""
  chex.assert_rank(policy_logits, 3)
  kl = kl_to_default(policy_logits, jax.lax.stop_gradient(default_logits))
  if mask is None:
    mask = jnp.ones_like(kl)
  return alpha * masked_mean(kl, mask.astype(kl.dtype))


def default_policy_loss(policy_logits: Array, default_logits: Array,
                        mask: Optional[Array] = None) -> Array:
  """Default-policy loss KL(SG(π) ‖ π0), masked mean over [T, B] (arXiv 1905.01240 Sec. 3).

  Gradients reach only `default_logits`; this is the sole training signal of π0.
  """
  chex.assert_rank(policy_logits, 3)
  kl = kl_to_default(jax.lax.stop_gradient(policy_logits), default_logits)
  if mask is None:
    mask = jnp.ones_like(kl)
  return masked_mean(kl, mask.astype(kl.dtype))
