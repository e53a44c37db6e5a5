"""Policy-distillation variants (Czarnecki et al. 2019, "Distilling Policy Distillation", arXiv 1902.02186).

Every variant is an instance of the paper's unified update (eq. 1):
  E_{q_θ}[ Σ_t −∇_θ log π_θ(a_t|x_t)·R̂_t + ∇_θ ℓ(π_θ, x_t) ],   R̂_t = Σ_{i≥t} r̂_i,
with control (sampling) policy q_θ, per-step loss ℓ and pseudo-reward r̂ from Table 1:

  kind                            q_θ      ℓ(x_t)                   r̂_t
  teacher                         π        H×(π(x_t) ‖ π_θ(x_t))    0
  on_policy                       π_θ      H×(π(x_t) ‖ π_θ(x_t))    0
  entropy_regularised             π_θ      0                        log π(a_t|x_t)
  n_distill                       π_θ      H×(π(x_t) ‖ π_θ(x_t))    −H×(π(x_{t+1}) ‖ π_θ(x_{t+1}))
  expected_entropy_regularised    π_θ      H×(π_θ(x_t) ‖ π(x_t))    log π(a_{t+1}|x_{t+1})
  teacher V reward                π_θ      0                        r_t + V_π(x_{t+1}) − V_π(x_t)

(π = teacher, π_θ = student, H×(p ‖ q) = −Σ_a p(a) log q(a).) Table 1 was checked against a
secondary summary of the paper, not the PDF itself. Choices made here:
  * The control policy is the caller's: "teacher" and "on_policy" compute the same ℓ and differ
    only in who generated the data.
  * N-distill's pseudo-reward defaults to −KL(π ‖ π_θ)(x_{t+1}) rather than Table 1's −H×: the
    two differ by the teacher entropy H(π(x_{t+1})), which does not depend on θ except through
    which states are visited. With KL the update is the exact gradient of E_{π_θ}[Σ_t KL_t]
    (Theorem 2 applied to ℓ = KL, whose ∇ℓ equals that of H×), and it vanishes when π_θ = π.
    `n_distill_reward="cross_entropy"` gives Table 1 literally.
  * Pseudo-rewards are discounted like environment rewards: r̂_t = γ_t·(next-step term), so they
    vanish at terminations (γ_t = 0); returns R̂_t = r̂_t + γ_t R̂_{t+1} via `rlax.discounted_returns`
    with a zero bootstrap. The term at the last step needs x_T: pass logits with T+1 steps (and
    `next_actions`-style data through `actions` of length T+1 for the expected-entropy variant);
    with only T steps the last pseudo-reward is 0 (truncation).
  * The REINFORCE part uses no baseline; an agent wanting lower variance can instead add the
    pseudo-rewards (`*_pseudo_rewards`) to the environment reward of its actor-critic ("+R").
Arrays are time-major [T, B, A] logits, [T, B] actions / discounts / mask.
"""

from typing import Dict, Optional, Tuple

import chex
import jax
import jax.numpy as jnp
import rlax

from repertory.errors import ConfigError
from repertory.losses.vtrace import masked_mean

Array = chex.Array

KINDS = ("teacher", "on_policy", "entropy_regularised", "n_distill",
         "expected_entropy_regularised")


def cross_entropy(p_logits: Array, q_logits: Array) -> Array:
  """H×(p ‖ q) = −Σ_a p(a) log q(a) over the last axis (arXiv 1902.02186 notation)."""
  chex.assert_equal_shape([p_logits, q_logits])
  return -jnp.sum(jax.nn.softmax(p_logits) * jax.nn.log_softmax(q_logits), axis=-1)


def _log_prob(logits: Array, actions: Array) -> Array:
  return jnp.take_along_axis(jax.nn.log_softmax(logits), actions[..., None], axis=-1)[..., 0]


def _split(logits: Array, num_steps: int) -> Tuple[Array, Optional[Array]]:
  """Returns (logits[:T], logits[1:T+1] or None) for [T, ...] or [T+1, ...] inputs."""
  if logits.shape[0] == num_steps + 1:
    return logits[:num_steps], logits[1:]
  chex.assert_axis_dimension(logits, 0, num_steps)
  return logits, None


def _next_step(x_next: Optional[Array], x: Array) -> Array:
  """x at t+1 for t < T−1 from x itself; at T−1 from x_next (if given) or 0 (truncation)."""
  if x_next is not None:
    return x_next
  return jnp.concatenate([x[1:], jnp.zeros_like(x[:1])], axis=0)


def _pg_term(student_logits: Array, actions: Array, pseudo_rewards: Array, discounts: Array,
             mask: Array) -> Tuple[Array, Array]:
  """−log π_θ(a_t|x_t)·SG(R̂_t), masked mean; R̂ = discounted sum of pseudo-rewards (eq. 1)."""
  returns = jax.vmap(rlax.discounted_returns, in_axes=(1, 1, None), out_axes=1)(
      pseudo_rewards, discounts, 0.0)
  returns = jax.lax.stop_gradient(returns)
  return masked_mean(-_log_prob(student_logits, actions) * returns, mask), returns


def teacher_distill_loss(student_logits: Array, teacher_logits: Array,
                         mask: Optional[Array] = None) -> Array:
  """ℓ = H×(π ‖ π_θ) with teacher-sampled data (Table 1, "Teacher distill"); masked mean [T, B]."""
  chex.assert_rank(student_logits, 3)
  ce = cross_entropy(jax.lax.stop_gradient(teacher_logits), student_logits)
  mask = jnp.ones_like(ce) if mask is None else mask.astype(ce.dtype)
  return masked_mean(ce, mask)


def on_policy_distill_loss(student_logits: Array, teacher_logits: Array,
                           mask: Optional[Array] = None) -> Array:
  """ℓ = H×(π ‖ π_θ) on student-sampled data (Table 1, "On-policy distill").

  Same per-step maths as `teacher_distill_loss`; by Theorem 1 of the paper the resulting update is
  not a gradient field (use N-distill or expected-entropy-regularised for that).
  """
  return teacher_distill_loss(student_logits, teacher_logits, mask)


def entropy_regularised_pseudo_rewards(teacher_logits: Array, actions: Array) -> Array:
  """r̂_t = log π(a_t|x_t) (Table 1, "Entropy regularised"); [T, B]."""
  chex.assert_rank([teacher_logits, actions], [3, 2])
  return jax.lax.stop_gradient(_log_prob(teacher_logits, actions))


def n_distill_pseudo_rewards(student_logits: Array, teacher_logits: Array, discounts: Array,
                             reward: str = "kl") -> Array:
  """r̂_t = −γ_t·D(π(x_{t+1}) ‖ π_θ(x_{t+1})), D = KL (default) or H× (Table 1 literally).

  Logits [T+1, B, A] (or [T, B, A]: last pseudo-reward 0); discounts [T, B]; returns [T, B].
  """
  chex.assert_rank([student_logits, teacher_logits, discounts], [3, 3, 2])
  chex.assert_equal_shape([student_logits, teacher_logits])
  num_steps = discounts.shape[0]
  if reward == "kl":
    div = rlax.categorical_kl_divergence(teacher_logits, student_logits)
  elif reward == "cross_entropy":
    div = cross_entropy(teacher_logits, student_logits)
  else:
    raise ConfigError(f"n_distill_reward must be 'kl' or 'cross_entropy', got {reward!r}.")
  div = jax.lax.stop_gradient(div)
  div_now, div_next = _split(div, num_steps)
  return -discounts * _next_step(div_next, div_now)


def expected_entropy_regularised_pseudo_rewards(teacher_logits: Array, actions: Array,
                                                discounts: Array) -> Array:
  """r̂_t = γ_t·log π(a_{t+1}|x_{t+1}) (Table 1, "Exp. entropy regularised"); [T, B].

  `teacher_logits` [T+1, B, A] with `actions` [T+1, B] give the last step exactly; with T steps
  the last pseudo-reward is 0.
  """
  chex.assert_rank([teacher_logits, actions, discounts], [3, 2, 2])
  chex.assert_equal_shape_prefix([teacher_logits, actions], 2)
  num_steps = discounts.shape[0]
  logp = jax.lax.stop_gradient(_log_prob(teacher_logits, actions))
  logp_now, logp_next = _split(logp, num_steps)
  return discounts * _next_step(logp_next, logp_now)


def teacher_value_pseudo_rewards(rewards: Array, teacher_values: Array,
                                 discounts: Array) -> Array:
  """r̂_t = r_t + γ_t V_π(x_{t+1}) − V_π(x_t) (Table 1, "Teacher V reward", potential shaping).

  teacher_values [T+1, B]; rewards, discounts [T, B]. (The table writes γ = 1.)
  """
  chex.assert_rank([rewards, teacher_values, discounts], [2, 2, 2])
  chex.assert_axis_dimension(teacher_values, 0, rewards.shape[0] + 1)
  v = jax.lax.stop_gradient(teacher_values)
  return rewards + discounts * v[1:] - v[:-1]


def n_distill_loss(student_logits: Array, teacher_logits: Array, actions: Array,
                   discounts: Array, mask: Optional[Array] = None,
                   reward: str = "kl") -> Tuple[Array, Dict[str, Array]]:
  """N-distill (Table 1; Theorem 2 applied to ℓ = H×(π ‖ π_θ)): ℓ-term + REINFORCE on r̂.

  Args:
    student_logits, teacher_logits: [T, B, A] or [T+1, B, A] (the extra step feeds r̂_{T−1}).
    actions: student-sampled a_t, int [T, B].
    discounts: γ_t, [T, B]. mask: [T, B] weights (0 drops a step).
    reward: "kl" (default, see module docstring) or "cross_entropy".
  """
  num_steps = actions.shape[0]
  pseudo_rewards = n_distill_pseudo_rewards(student_logits, teacher_logits, discounts, reward)
  s_now, _ = _split(student_logits, num_steps)
  t_now, _ = _split(teacher_logits, num_steps)
  mask = jnp.ones_like(discounts) if mask is None else mask.astype(discounts.dtype)
  ell = teacher_distill_loss(s_now, t_now, mask)
  pg, returns = _pg_term(s_now, actions, pseudo_rewards, discounts, mask)
  return ell + pg, {"distill_ell": ell, "distill_pg": pg, "pseudo_returns": returns}


def expected_entropy_regularised_loss(student_logits: Array, teacher_logits: Array,
                                      actions: Array, discounts: Array,
                                      mask: Optional[Array] = None
                                      ) -> Tuple[Array, Dict[str, Array]]:
  """Expected entropy-regularised distillation (Table 1): ℓ = H×(π_θ ‖ π), r̂_t = log π(a_{t+1}).

  The paper's recommended variant (Theorem 2 applied to ℓ = H×(π_θ ‖ π)).

  Args:
    student_logits: [T, B, A] or [T+1, B, A]. teacher_logits: same leading size.
    actions: student-sampled actions, [T, B] or [T+1, B] (matching teacher_logits).
    discounts: [T, B]. mask: [T, B].
  """
  num_steps = discounts.shape[0]
  pseudo_rewards = expected_entropy_regularised_pseudo_rewards(teacher_logits, actions,
                                                               discounts)
  s_now, _ = _split(student_logits, num_steps)
  t_now, _ = _split(teacher_logits, num_steps)
  a_now = actions[:num_steps]
  mask = jnp.ones_like(discounts) if mask is None else mask.astype(discounts.dtype)
  ell = masked_mean(cross_entropy(s_now, jax.lax.stop_gradient(t_now)), mask)
  pg, returns = _pg_term(s_now, a_now, pseudo_rewards, discounts, mask)
  return ell + pg, {"distill_ell": ell, "distill_pg": pg, "pseudo_returns": returns}


def entropy_regularised_loss(student_logits: Array, teacher_logits: Array, actions: Array,
                             discounts: Array, mask: Optional[Array] = None
                             ) -> Tuple[Array, Dict[str, Array]]:
  """Entropy-regularised distillation (Table 1): ℓ = 0, REINFORCE on r̂_t = log π(a_t|x_t)."""
  num_steps = actions.shape[0]
  s_now, _ = _split(student_logits, num_steps)
  t_now, _ = _split(teacher_logits, num_steps)
  mask = jnp.ones_like(discounts) if mask is None else mask.astype(discounts.dtype)
  pseudo_rewards = entropy_regularised_pseudo_rewards(t_now, actions)
  pg, returns = _pg_term(s_now, actions, pseudo_rewards, discounts, mask)
  return pg, {"distill_ell": jnp.zeros(()), "distill_pg": pg, "pseudo_returns": returns}


def distillation_loss(kind: str, student_logits: Array, teacher_logits: Array,
                      mask: Optional[Array] = None, actions: Optional[Array] = None,
                      discounts: Optional[Array] = None, *, n_distill_reward: str = "kl"
                      ) -> Tuple[Array, Dict[str, Array]]:
  """Dispatches to one Table-1 variant of arXiv 1902.02186; returns (scalar loss, metrics).

  kind: one of `KINDS`. "teacher" / "on_policy" need only the logits; the others also need
  student-sampled `actions` and `discounts` [T, B].
  """
  if kind not in KINDS:
    raise ConfigError(f"Unknown distillation kind {kind!r}; choose one of {', '.join(KINDS)}.")
  if kind in ("teacher", "on_policy"):
    if mask is not None:
      num_steps = mask.shape[0]
    elif actions is not None:
      num_steps = actions.shape[0]
    else:
      num_steps = student_logits.shape[0]
    s_now, _ = _split(student_logits, num_steps)
    t_now, _ = _split(teacher_logits, num_steps)
    loss = teacher_distill_loss(s_now, t_now, mask)
    return loss, {"distill_ell": loss, "distill_pg": jnp.zeros(())}
  if actions is None or discounts is None:
    raise ConfigError(f"Distillation kind {kind!r} needs student-sampled actions and discounts; "
                      "pass actions=[T, B] and discounts=[T, B].")
  if kind == "n_distill":
    return n_distill_loss(student_logits, teacher_logits, actions, discounts, mask,
                          reward=n_distill_reward)
  if kind == "expected_entropy_regularised":
    return expected_entropy_regularised_loss(student_logits, teacher_logits, actions, discounts,
                                             mask)
  return entropy_regularised_loss(student_logits, teacher_logits, actions, discounts, mask)
