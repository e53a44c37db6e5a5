"""V-trace / IMPALA loss: library references, hand computations and gradient properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from repertory.losses import vtrace_actor_critic_loss, vtrace_returns

T, B, A = 6, 3, 4


def _batch(seed=0, on_policy=False):
  ks = jax.random.split(jax.random.PRNGKey(seed), 8)
  logits = jax.random.normal(ks[0], (T, B, A))
  behaviour = logits if on_policy else jax.random.normal(ks[1], (T, B, A))
  return dict(
      logits=logits,
      values=jax.random.normal(ks[2], (T, B)),
      bootstrap_value=jax.random.normal(ks[3], (B,)),
      actions=jax.random.randint(ks[4], (T, B), 0, A),
      behaviour_logits=behaviour,
      rewards=jax.random.normal(ks[5], (T, B)),
      discounts=0.9 * jnp.ones((T, B)),
  )


def test_on_policy_lambda_one_targets_equal_lambda_returns():
  d = _batch(on_policy=True)
  d["discounts"] = d["discounts"].at[2, 1].set(0.0)  # a termination inside the sequence.
  _, metrics = vtrace_actor_critic_loss(**d, lambda_=1.0)
  v_t = jnp.concatenate([d["values"][1:], d["bootstrap_value"][None]])
  expected = jax.vmap(rlax.lambda_returns, in_axes=(1, 1, 1, None), out_axes=1)(
      d["rewards"], d["discounts"], v_t, 1.0)
  np.testing.assert_allclose(metrics["vs"], expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(metrics["rhos"], 1.0, rtol=1e-5)


def test_lambda_zero_gives_clipped_one_step_td():
  d = _batch(seed=1)
  rhos = jnp.exp(jax.random.normal(jax.random.PRNGKey(7), (T, B)))  # some above, some below 1.
  out = vtrace_returns(d["values"], d["bootstrap_value"], d["rewards"], d["discounts"], rhos,
                       lambda_=0.0, clip_rho=1.0)
  v_t = jnp.concatenate([d["values"][1:], d["bootstrap_value"][None]])
  expected = jnp.minimum(1.0, rhos) * (d["rewards"] + d["discounts"] * v_t - d["values"])
  np.testing.assert_allclose(out.errors, expected, rtol=1e-5, atol=1e-6)


def test_zero_discount_cuts_dependence_on_later_values():
  d = _batch(seed=2)
  k = 2
  discounts = d["discounts"].at[k].set(0.0)
  rhos = jnp.exp(0.3 * jax.random.normal(jax.random.PRNGKey(3), (T, B)))

  def targets_sum(values, bootstrap):
    out = vtrace_returns(values, bootstrap, d["rewards"], discounts, rhos,
                         stop_target_gradients=False)
    return jnp.sum(out.vs[:k + 1])

  g_values, g_boot = jax.grad(targets_sum, argnums=(0, 1))(d["values"], d["bootstrap_value"])
  np.testing.assert_array_equal(g_values[k + 1:], 0.0)
  np.testing.assert_array_equal(g_boot, 0.0)
  assert np.abs(np.asarray(g_values[:k + 1])).sum() > 0  # earlier values do matter.


def test_no_gradient_into_targets():
  d = _batch(seed=3)
  c_v = 0.5

  def loss_fn(values, bootstrap, rewards):
    return vtrace_actor_critic_loss(**{**d, "values": values, "bootstrap_value": bootstrap,
                                       "rewards": rewards}, baseline_cost=c_v)

  (_, metrics), grads = jax.value_and_grad(loss_fn, argnums=(0, 1, 2), has_aux=True)(
      d["values"], d["bootstrap_value"], d["rewards"])
  g_values, g_boot, g_rewards = grads
  np.testing.assert_array_equal(g_boot, 0.0)
  np.testing.assert_array_equal(g_rewards, 0.0)
  # Only the ½(v_s − V)² term reaches V, and only through V itself: −c_v (v_s − V) / (T·B).
  expected = -c_v * (metrics["vs"] - d["values"]) / (T * B)
  np.testing.assert_allclose(g_values, expected, rtol=1e-5, atol=1e-7)


def test_masked_steps_contribute_nothing():
  d = _batch(seed=4)
  mask = jnp.ones((T, B)).at[3, 0].set(0.0).at[5, 2].set(0.0)
  loss, _ = vtrace_actor_critic_loss(**d, mask=mask)
  ks = jax.random.split(jax.random.PRNGKey(9), 3)
  perturbed = dict(d)
  for name, key in zip(("rewards", "logits", "behaviour_logits"), ks):
    noise = 10.0 * jax.random.normal(key, d[name].shape)
    perturbed[name] = d[name].at[3, 0].add(noise[3, 0]).at[5, 2].add(noise[5, 2])
  perturbed["actions"] = d["actions"].at[3, 0].set((d["actions"][3, 0] + 1) % A)
  perturbed["discounts"] = d["discounts"].at[3, 0].set(0.3)
  loss_p, _ = vtrace_actor_critic_loss(**perturbed, mask=mask)
  np.testing.assert_allclose(loss, loss_p, rtol=1e-6)
  # ... while an unmasked step does matter.
  perturbed["rewards"] = perturbed["rewards"].at[1, 1].add(1.0)
  loss_q, _ = vtrace_actor_critic_loss(**perturbed, mask=mask)
  assert abs(float(loss_q) - float(loss)) > 1e-6


def test_mask_cuts_recursion_at_boundary():
  d = _batch(seed=5, on_policy=True)
  mask = jnp.ones((T, B)).at[3].set(0.0)
  _, metrics = vtrace_actor_critic_loss(**d, mask=mask)
  # Step 2 bootstraps from V(x_3); nothing later leaks in.
  expected = d["rewards"][2] + d["discounts"][2] * d["values"][3]
  np.testing.assert_allclose(metrics["vs"][2], expected, rtol=1e-5)
  np.testing.assert_allclose(metrics["vs"][3], d["values"][3], rtol=1e-6)


def test_accepts_t_plus_one_inputs_and_is_jittable():
  d = _batch(seed=6)
  logits_long = jnp.concatenate([d["logits"], d["logits"][:1]])
  values_long = jnp.concatenate([d["values"], d["bootstrap_value"][None]])
  ref, _ = vtrace_actor_critic_loss(**d)
  args = {**d, "logits": logits_long, "values": values_long, "bootstrap_value": None}
  out, _ = vtrace_actor_critic_loss(**args)
  np.testing.assert_allclose(out, ref, rtol=1e-6)
  jitted, _ = jax.jit(vtrace_actor_critic_loss)(*[d[k] for k in (
      "logits", "values", "bootstrap_value", "actions", "behaviour_logits", "rewards",
      "discounts")])
  np.testing.assert_allclose(jitted, ref, rtol=1e-5)


def test_wrong_rank_raises():
  d = _batch()
  with pytest.raises(AssertionError):
    vtrace_actor_critic_loss(**{**d, "rewards": d["rewards"][0]})
