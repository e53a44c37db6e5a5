"""Distillation variants (arXiv 1902.02186 Table 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory.errors import ConfigError
from repertory.losses import (DISTILLATION_KINDS, cross_entropy, distillation_loss,
                              expected_entropy_regularised_pseudo_rewards,
                              n_distill_pseudo_rewards, teacher_value_pseudo_rewards)

T, B, A = 5, 3, 4


def _data(seed=0):
  ks = jax.random.split(jax.random.PRNGKey(seed), 4)
  return dict(
      student=jax.random.normal(ks[0], (T + 1, B, A)),
      teacher=jax.random.normal(ks[1], (T + 1, B, A)),
      actions=jax.random.randint(ks[2], (T, B), 0, A),
      discounts=0.9 * jnp.ones((T, B)).at[2, 1].set(0.0),
  )


@pytest.mark.parametrize("kind", ["teacher", "on_policy", "n_distill"])
def test_gradient_vanishes_when_student_equals_teacher(kind):
  d = _data()
  def loss(student):
    return distillation_loss(kind, student, d["teacher"], actions=d["actions"],
                             discounts=d["discounts"])[0]
  g = jax.grad(loss)(d["teacher"])
  np.testing.assert_allclose(g, 0.0, atol=1e-6)
  assert np.abs(np.asarray(jax.grad(loss)(d["student"]))).sum() > 1e-3


def test_teacher_loss_is_cross_entropy_and_teacher_gets_no_gradient():
  d = _data(1)
  loss, _ = distillation_loss("teacher", d["student"][:T], d["teacher"][:T])
  p = jax.nn.softmax(d["teacher"][:T])
  np.testing.assert_allclose(loss, jnp.mean(-jnp.sum(p * jax.nn.log_softmax(d["student"][:T]),
                                                     -1)), rtol=1e-5)
  g_teacher = jax.grad(lambda t: distillation_loss("teacher", d["student"], t)[0])(d["teacher"])
  np.testing.assert_array_equal(g_teacher, 0.0)


def test_n_distill_pseudo_rewards_hand_computed():
  d = _data(2)
  r = n_distill_pseudo_rewards(d["student"], d["teacher"], d["discounts"], reward="cross_entropy")
  expected = -d["discounts"] * cross_entropy(d["teacher"][1:], d["student"][1:])
  np.testing.assert_allclose(r, expected, rtol=1e-5)
  assert float(r[2, 1]) == 0.0  # termination: nothing from the next episode.
  r_kl = n_distill_pseudo_rewards(d["student"], d["teacher"], d["discounts"])
  assert np.all(np.asarray(r_kl) <= 1e-7)
  # With only T steps the last pseudo-reward is truncated to 0.
  r_short = n_distill_pseudo_rewards(d["student"][:T], d["teacher"][:T], d["discounts"])
  np.testing.assert_allclose(r_short[:-1], r_kl[:-1], rtol=1e-6)
  np.testing.assert_array_equal(r_short[-1], 0.0)


def test_expected_entropy_regularised_pieces():
  d = _data(3)
  actions_long = jnp.concatenate([d["actions"], d["actions"][:1]])
  r = expected_entropy_regularised_pseudo_rewards(d["teacher"], actions_long, d["discounts"])
  logp = jnp.take_along_axis(jax.nn.log_softmax(d["teacher"]), actions_long[..., None], -1)[..., 0]
  np.testing.assert_allclose(r, d["discounts"] * logp[1:], rtol=1e-5)
  loss, metrics = distillation_loss("expected_entropy_regularised", d["student"], d["teacher"],
                                    actions=actions_long, discounts=d["discounts"])
  ell = jnp.mean(cross_entropy(d["student"][:T], d["teacher"][:T]))
  np.testing.assert_allclose(metrics["distill_ell"], ell, rtol=1e-5)
  assert np.isfinite(float(loss))
  g_teacher = jax.grad(lambda t: distillation_loss(
      "expected_entropy_regularised", d["student"], t, actions=actions_long,
      discounts=d["discounts"])[0])(d["teacher"])
  np.testing.assert_array_equal(g_teacher, 0.0)


def test_teacher_value_reward_is_potential_shaping():
  rewards = jnp.array([[1.0], [0.0]])
  values = jnp.array([[0.5], [2.0], [4.0]])
  discounts = jnp.array([[1.0], [0.5]])
  np.testing.assert_allclose(teacher_value_pseudo_rewards(rewards, values, discounts),
                             [[1.0 + 2.0 - 0.5], [0.0 + 0.5 * 4.0 - 2.0]])


def test_dispatcher_errors():
  d = _data()
  with pytest.raises(ConfigError, match="Unknown distillation kind"):
    distillation_loss("kickstart", d["student"], d["teacher"])
  with pytest.raises(ConfigError, match="needs student-sampled actions"):
    distillation_loss("n_distill", d["student"], d["teacher"])
  for kind in DISTILLATION_KINDS:
    loss, _ = distillation_loss(kind, d["student"][:T], d["teacher"][:T], actions=d["actions"],
                                discounts=d["discounts"])
    assert np.isfinite(float(loss))
