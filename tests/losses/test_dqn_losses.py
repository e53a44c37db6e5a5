"""Double-Q n-step and C51 double-Q wrappers."""

import jax
import jax.numpy as jnp
import numpy as np
import rlax

from repertory.losses import categorical_double_q_nstep, double_q_nstep_loss


def test_double_q_nstep_td_error_hand_computation():
  q_tm1 = jnp.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
  a_tm1 = jnp.array([0, 1])
  r_t = jnp.array([1.5, -0.5])  # n-step returns.
  gamma, n = 0.9, 3
  discount_t = jnp.array([gamma**n, 0.0])  # second sequence terminated within n steps.
  q_t_value = jnp.array([[10.0, 20.0, 30.0], [5.0, 6.0, 7.0]])
  q_t_selector = jnp.array([[0.0, 1.0, 0.5], [3.0, 0.0, 0.0]])  # argmax 1 and 0.
  out = double_q_nstep_loss(q_tm1, a_tm1, r_t, discount_t, q_t_value, q_t_selector)
  expected = np.array([1.5 + gamma**3 * 20.0 - 1.0, -0.5 + 0.0 - (-1.0)])
  np.testing.assert_allclose(out.td_error, expected, rtol=1e-6)
  huber = np.where(np.abs(expected) <= 1, 0.5 * expected**2, np.abs(expected) - 0.5)
  np.testing.assert_allclose(out.loss, huber, rtol=1e-6)
  sq = double_q_nstep_loss(q_tm1, a_tm1, r_t, discount_t, q_t_value, q_t_selector,
                           huber_delta=None)
  np.testing.assert_allclose(sq.loss, 0.5 * expected**2, rtol=1e-6)
  # Gradient only into q_tm1 (targets stopped).
  g = jax.grad(lambda qv: jnp.sum(double_q_nstep_loss(q_tm1, a_tm1, r_t, discount_t, qv,
                                                      q_t_selector).loss))(q_t_value)
  np.testing.assert_array_equal(g, 0.0)


def test_categorical_double_q_matches_rlax_per_example():
  ks = jax.random.split(jax.random.PRNGKey(0), 5)
  b, a, z = 4, 3, 11
  atoms = jnp.linspace(-5.0, 5.0, z)
  logits_tm1 = jax.random.normal(ks[0], (b, a, z))
  logits_t = jax.random.normal(ks[1], (b, a, z))
  a_tm1 = jax.random.randint(ks[2], (b,), 0, a)
  r_t = jax.random.normal(ks[3], (b,))
  discount_t = jnp.array([0.97, 0.0, 0.5, 0.97])
  selector = jax.random.normal(ks[4], (b, a))
  losses = categorical_double_q_nstep(logits_tm1, atoms, a_tm1, r_t, discount_t, logits_t, atoms,
                                      selector)
  assert losses.shape == (b,)
  for i in range(b):
    ref = rlax.categorical_double_q_learning(atoms, logits_tm1[i], a_tm1[i], r_t[i],
                                             discount_t[i], atoms, logits_t[i], selector[i])
    np.testing.assert_allclose(losses[i], ref, rtol=1e-5)
  # Terminal example: target is the reward projected onto the support (here a point mass mix).
  assert np.all(np.asarray(losses) > 0)
