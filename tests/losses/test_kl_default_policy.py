"""KL to a learned default policy (arXiv 1905.01240): properties of the three terms."""

import jax
import jax.numpy as jnp
import numpy as np

from repertory.losses import (default_policy_loss, kl_to_default, policy_kl_loss,
                              regularised_reward, vtrace_actor_critic_loss)

T, B, A = 5, 2, 3
ALPHA = 0.1


def _data(seed=0):
  ks = jax.random.split(jax.random.PRNGKey(seed), 8)
  return dict(
      logits=jax.random.normal(ks[0], (T, B, A)),
      default_logits=jax.random.normal(ks[1], (T, B, A)),
      values=jax.random.normal(ks[2], (T, B)),
      bootstrap_value=jax.random.normal(ks[3], (B,)),
      actions=jax.random.randint(ks[4], (T, B), 0, A),
      behaviour_logits=jax.random.normal(ks[5], (T, B, A)),
      rewards=jax.random.normal(ks[6], (T, B)),
      discounts=0.9 * jnp.ones((T, B)),
  )


def _regularised_loss(logits, default_logits, d):
  """V-trace on r̃ plus the analytic α·KL(π ‖ SG π0) term, as an agent would combine them."""
  r_tilde = regularised_reward(d["rewards"], logits, default_logits, ALPHA)
  rl, _ = vtrace_actor_critic_loss(logits, d["values"], d["bootstrap_value"], d["actions"],
                                   d["behaviour_logits"], r_tilde, d["discounts"])
  return rl + policy_kl_loss(logits, default_logits, alpha=ALPHA)


def test_kl_matches_hand_computation():
  d = _data()
  p = jax.nn.softmax(d["logits"])
  expected = jnp.sum(p * (jax.nn.log_softmax(d["logits"]) -
                          jax.nn.log_softmax(d["default_logits"])), -1)
  np.testing.assert_allclose(kl_to_default(d["logits"], d["default_logits"]), expected,
                             rtol=1e-5, atol=1e-6)


def test_default_equal_to_policy_gives_base_loss_and_gradient():
  d = _data(1)
  base = lambda lg: vtrace_actor_critic_loss(lg, d["values"], d["bootstrap_value"], d["actions"],
                                             d["behaviour_logits"], d["rewards"],
                                             d["discounts"])[0]
  reg = lambda lg: _regularised_loss(lg, lg, d)
  np.testing.assert_allclose(reg(d["logits"]), base(d["logits"]), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(jax.grad(reg)(d["logits"]), jax.grad(base)(d["logits"]),
                             rtol=1e-5, atol=1e-7)


def test_default_policy_gets_no_rl_gradient():
  d = _data(2)
  g = jax.grad(_regularised_loss, argnums=1)(d["logits"], d["default_logits"], d)
  np.testing.assert_array_equal(g, 0.0)
  # ... but it is trained by KL(SG π ‖ π0), which in turn sends nothing to π.
  g_pi, g_pi0 = jax.grad(default_policy_loss, argnums=(0, 1))(d["logits"], d["default_logits"])
  np.testing.assert_array_equal(g_pi, 0.0)
  assert np.abs(np.asarray(g_pi0)).sum() > 0


def test_regularised_reward_not_above_reward():
  for seed in range(5):
    d = _data(seed)
    r_tilde = regularised_reward(d["rewards"], d["logits"], d["default_logits"], ALPHA)
    assert np.all(np.asarray(r_tilde) <= np.asarray(d["rewards"]) + 1e-7)
  np.testing.assert_allclose(regularised_reward(d["rewards"], d["logits"], d["logits"], ALPHA),
                             d["rewards"], atol=1e-6)


def test_losses_zero_at_equality_and_masked():
  d = _data(3)
  np.testing.assert_allclose(default_policy_loss(d["logits"], d["logits"]), 0.0, atol=1e-6)
  mask = jnp.zeros((T, B)).at[0, 0].set(1.0)
  kl = kl_to_default(d["logits"], d["default_logits"])
  np.testing.assert_allclose(policy_kl_loss(d["logits"], d["default_logits"], mask, ALPHA),
                             ALPHA * kl[0, 0], rtol=1e-5)
