"""Q-learning losses for the DQN / DER agents: thin wrappers over rlax, batched over [B].

* Double Q-learning (van Hasselt et al. 2016, arXiv 1509.06461, eq. 4) with n-step returns
  (Sutton 1988; Rainbow, Hessel et al. 2018, arXiv 1710.02298, eq. 2):
    δ = r^(n)_t + γ^(n)_t · Q_target(s_{t+n}, argmax_a Q_online(s_{t+n}, a)) − Q(s_t, a_t),
  where the caller (the n-step adder) supplies r^(n) = Σ_{k<n} γ^k r_{t+k+1} and
  γ^(n) = γ^n · Π discounts (0 if the episode ended inside the n steps). Via `rlax.double_q_learning`.
* Categorical (C51) double Q-learning (Bellemare et al. 2017, arXiv 1707.06887, Algorithm 1;
  Rainbow eq. 3), via `rlax.categorical_double_q_learning`: the cross-entropy between the projected
  target distribution and the online distribution of the taken action.
Targets carry stop_gradient (rlax default).
"""

from typing import NamedTuple, Optional

import chex
import jax
import rlax

Array = chex.Array

HUBER_DELTA = 1.0  # Huber κ = 1 (DQN error clipping to [−1, 1], Mnih et al. 2015; Dopamine default).


class DoubleQOutput(NamedTuple):
  loss: Array  # [B] Huber loss of the TD error (0.5·δ² when huber_delta is None).
  td_error: Array  # [B] δ, e.g. for prioritised replay.


def double_q_nstep_loss(q_tm1: Array, a_tm1: Array, r_t: Array, discount_t: Array,
                        q_t_value: Array, q_t_selector: Array,
                        huber_delta: Optional[float] = HUBER_DELTA) -> DoubleQOutput:
  """Per-example n-step double-Q TD error and its Huber loss (arXiv 1509.06461 eq. 4).

  Args:
    q_tm1: online Q(s_t, ·), [B, A]. a_tm1: a_t, int [B].
    r_t: n-step return r^(n), [B]. discount_t: γ^n·Π discounts, [B].
    q_t_value: target-network Q(s_{t+n}, ·), [B, A].
    q_t_selector: online-network Q(s_{t+n}, ·) used for the argmax, [B, A].
    huber_delta: κ of `rlax.huber_loss`; None gives the squared loss 0.5·δ².

  Returns:
    DoubleQOutput(loss [B], td_error [B]).
  """
  chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t_value, q_t_selector], [2, 1, 1, 1, 2, 2])
  chex.assert_equal_shape([q_tm1, q_t_value, q_t_selector])
  chex.assert_equal_shape([a_tm1, r_t, discount_t])
  td_error = jax.vmap(rlax.double_q_learning)(q_tm1, a_tm1, r_t, discount_t, q_t_value,
                                              q_t_selector)
  if huber_delta is None:
    loss = 0.5 * td_error**2
  else:
    loss = rlax.huber_loss(td_error, huber_delta)
  return DoubleQOutput(loss=loss, td_error=td_error)


def categorical_double_q_nstep(q_logits_tm1: Array, q_atoms_tm1: Array, a_tm1: Array,
                               r_t: Array, discount_t: Array, q_logits_t: Array,
                               q_atoms_t: Array, q_t_selector: Array) -> Array:
  """Per-example C51 double-Q loss with n-step returns (arXiv 1707.06887 Alg. 1; Rainbow eq. 3).

  Args:
    q_logits_tm1: online logits at s_t, [B, A, Z]. q_atoms_tm1: support, [Z].
    a_tm1: int [B]. r_t: n-step return, [B]. discount_t: γ^n·Π discounts, [B].
    q_logits_t: target-network logits at s_{t+n}, [B, A, Z]. q_atoms_t: support, [Z].
    q_t_selector: online Q-values (expectations) at s_{t+n} for the argmax, [B, A].

  Returns:
    cross-entropy loss per example, [B].
  """
  chex.assert_rank([q_logits_tm1, q_atoms_tm1, a_tm1, r_t, discount_t, q_logits_t, q_atoms_t,
                    q_t_selector], [3, 1, 1, 1, 1, 3, 1, 2])
  chex.assert_equal_shape([q_logits_tm1, q_logits_t])
  chex.assert_equal_shape([a_tm1, r_t, discount_t])
  return jax.vmap(rlax.categorical_double_q_learning,
                  in_axes=(None, 0, 0, 0, 0, None, 0, 0))(
                      q_atoms_tm1, q_logits_tm1, a_tm1, r_t, discount_t, q_atoms_t, q_logits_t,
                      q_t_selector)
