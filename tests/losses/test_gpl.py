"""GPL pessimism and dual-TD β (arXiv 2110.03375)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from repertory.errors import ConfigError
from repertory.losses import (GPLConfig, actor_beta, beta_optimizer, critic_uncertainty,
                              dual_td_beta_loss, optimistic_shift, pessimistic_target)


def test_two_critics_beta_half_is_clipped_double_q():
  k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(0), 4)
  qs = jax.random.normal(k1, (2, 16))
  r, logp = jax.random.normal(k2, (16,)), jax.random.normal(k3, (16,))
  discount = 0.99 * (jax.random.uniform(k4, (16,)) > 0.2)
  y = pessimistic_target(r, discount, qs, logp, alpha=0.2, beta=0.5)
  expected = r + discount * (jnp.minimum(qs[0], qs[1]) - 0.2 * logp)
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jnp.mean(qs, 0) - 0.5 * critic_uncertainty(qs),
                             jnp.min(qs, 0), rtol=1e-5, atol=1e-6)


def test_target_has_no_gradient():
  qs = jnp.ones((2, 3))
  g = jax.grad(lambda q: jnp.sum(pessimistic_target(jnp.ones(3), jnp.ones(3), q, jnp.zeros(3),
                                                    0.1, 0.5)))(qs)
  np.testing.assert_array_equal(g, 0.0)


@pytest.mark.parametrize("gap,direction", [(1.0, -1), (-1.0, 1)])
def test_beta_moves_against_mean_td_gap(gap, direction):
  config = GPLConfig()
  beta = jnp.asarray(config.beta_init)
  opt = beta_optimizer(config)
  state = opt.init(beta)
  target = jnp.zeros(8)
  q_pred = jnp.full((2, 8), gap)
  grad = jax.grad(dual_td_beta_loss)(beta, q_pred, target)
  np.testing.assert_allclose(grad, gap)
  updates, _ = opt.update(grad, state, beta)
  new_beta = optax.apply_updates(beta, updates)
  assert np.sign(float(new_beta - beta)) == direction
  np.testing.assert_allclose(abs(float(new_beta - beta)), config.beta_lr, rtol=1e-3)
  # No gradient flows into the critics through the dual loss.
  np.testing.assert_array_equal(jax.grad(dual_td_beta_loss, argnums=1)(beta, q_pred, target), 0)


def test_uncertainty_symmetric_non_negative_and_pairwise_mean():
  qs = jax.random.normal(jax.random.PRNGKey(1), (4, 10))
  u = critic_uncertainty(qs)
  assert np.all(np.asarray(u) >= 0)
  np.testing.assert_allclose(u, critic_uncertainty(qs[::-1]), rtol=1e-6)
  np.testing.assert_allclose(u, critic_uncertainty(qs[jnp.array([2, 0, 3, 1])]), rtol=1e-6)
  pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
  expected = np.mean([np.abs(qs[i] - qs[j]) for i, j in pairs], axis=0)
  np.testing.assert_allclose(u, expected, rtol=1e-5)
  np.testing.assert_allclose(critic_uncertainty(jnp.stack([qs[0], qs[0]])), 0.0)


def test_quantile_w1_hand_check():
  z1 = jnp.array([[3.0, 1.0, 2.0]])  # sorted: 1, 2, 3
  z2 = jnp.array([[0.0, 4.0, 2.0]])  # sorted: 0, 2, 4
  z3 = jnp.array([[1.0, 2.0, 3.0]])
  qs = jnp.stack([z1, z2, z3])  # [N=3, B=1, K=3]
  # W1(z1,z2) = (1+0+1)/3, W1(z1,z3) = 0, W1(z2,z3) = (1+0+1)/3.
  np.testing.assert_allclose(critic_uncertainty(qs), [(2 / 3 + 0 + 2 / 3) / 3], rtol=1e-6)
  np.testing.assert_allclose(critic_uncertainty(qs[:2]), [2 / 3], rtol=1e-6)


def test_optimistic_shift_schedule():
  np.testing.assert_allclose(optimistic_shift(0, -1.0, 100), -1.0)
  np.testing.assert_allclose(optimistic_shift(50, -1.0, 100), -0.5)
  np.testing.assert_allclose(optimistic_shift(1000, -1.0, 100), 0.0)
  np.testing.assert_allclose(optimistic_shift(5, -1.0, 0), 0.0)
  config = GPLConfig(optimism_init=-0.4, optimism_anneal_steps=10)
  np.testing.assert_allclose(actor_beta(jnp.asarray(0.5), 5, config), 0.3, rtol=1e-6)


def test_defaults_and_errors():
  config = GPLConfig()
  assert (config.beta_init, config.beta_lr, config.beta_b1) == (0.5, 1e-4, 0.5)
  with pytest.raises(ConfigError):
    critic_uncertainty(jnp.ones((1, 3)))
