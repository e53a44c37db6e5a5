"""ReDo (arXiv 2302.12902, Alg. 1): dormant units get fresh incoming and zero outgoing weights; outputs unchanged."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from repertory.networks import heads
from repertory.networks.conv import Conv2DValid
from repertory.plasticity.redo import redo_reset


def _mlp(x):
  h = jax.nn.relu(hk.Linear(4, name="first")(x))
  h = jax.nn.relu(hk.Linear(3, name="second")(h))
  return hk.Linear(2, name="out")(h)


def _init(f, x, seed):
  return hk.without_apply_rng(hk.transform(f)).init(jax.random.PRNGKey(seed), x)


def test_dead_units_get_fresh_incoming_and_zero_outgoing_weights_and_outputs_stay():
  network = hk.without_apply_rng(hk.transform(_mlp))
  x = jnp.abs(jax.random.normal(jax.random.PRNGKey(1), (32, 5)))  # positive inputs
  params = {m: dict(v) for m, v in network.init(jax.random.PRNGKey(0), x).items()}
  w = np.array(params["first"]["w"])
  w[:, [0, 2]] = np.abs(w[:, [0, 2]]) + 0.1  # units 0 and 2 of `first` fire on positive inputs
  w[:, [1, 3]] = -1.0  # units 1 and 3 never do
  params["first"]["w"] = jnp.asarray(w)
  params["first"]["b"] = jnp.asarray([0.1, -1.0, 0.1, -1.0])
  second = np.abs(np.array(params["second"]["w"])) + 0.1  # units 0 and 1 of `second` fire, unit 2 never
  second[:, 2] = -1.0
  params["second"]["w"] = jnp.asarray(second)
  fresh = _init(_mlp, x, seed=5)
  # τ = 0: only dead units are recycled, so the outputs must not change at all.
  new, counts, recycled = redo_reset(network.apply, params, fresh, (x,), threshold=0.0)
  assert int(counts["redo/first"]) == 2
  new, fresh, params = (jax.tree.map(np.asarray, t) for t in (new, fresh, params))
  np.testing.assert_array_equal(new["first"]["w"][:, [1, 3]], fresh["first"]["w"][:, [1, 3]])
  np.testing.assert_array_equal(new["first"]["b"][[1, 3]], fresh["first"]["b"][[1, 3]])
  np.testing.assert_array_equal(new["first"]["w"][:, [0, 2]], params["first"]["w"][:, [0, 2]])
  np.testing.assert_array_equal(new["second"]["w"][[1, 3]], 0.0)  # outgoing rows of the recycled units
  h1 = np.maximum(np.asarray(x) @ params["first"]["w"] + params["first"]["b"], 0)
  h2 = np.abs(np.maximum(h1 @ params["second"]["w"] + params["second"]["b"], 0)).mean(0)
  dead = h2 / h2.mean() <= 0.0  # `second`'s own dead units, by hand
  np.testing.assert_array_equal(dead, [False, False, True])
  assert int(counts["redo/second"]) == dead.sum()
  live_rows = [0, 2]
  np.testing.assert_array_equal(new["second"]["w"][live_rows][:, ~dead], params["second"]["w"][live_rows][:, ~dead])
  np.testing.assert_array_equal(new["second"]["w"][live_rows][:, dead], fresh["second"]["w"][live_rows][:, dead])
  np.testing.assert_array_equal(new["out"]["w"][dead], 0.0)
  np.testing.assert_array_equal(new["out"]["w"][~dead], params["out"]["w"][~dead])
  np.testing.assert_allclose(network.apply(new, x), network.apply(params, x), rtol=1e-6, atol=1e-7)
  # The recycled entries: incoming columns (and biases) of the dead units, outgoing rows of the same units.
  recycled = jax.tree.map(np.asarray, recycled)
  np.testing.assert_array_equal(recycled["first"]["w"], np.broadcast_to([False, True, False, True], (5, 4)))
  np.testing.assert_array_equal(recycled["first"]["b"], [False, True, False, True])
  expected_second = np.zeros((4, 3), bool)
  expected_second[[1, 3]] = True
  expected_second[:, dead] = True
  np.testing.assert_array_equal(recycled["second"]["w"], expected_second)
  np.testing.assert_array_equal(recycled["out"]["w"], np.broadcast_to(dead[:, None], (3, 2)))
  assert not recycled["out"]["b"].any()
  # The recycled units now fire: they can learn again.
  hidden = jax.nn.relu(x @ new["first"]["w"] + new["first"]["b"])
  assert float(jnp.mean(hidden[:, 1] + hidden[:, 3])) > 0


def test_a_dead_channel_of_a_flattened_convolution_loses_all_its_rows_in_every_consumer():
  def f(images):
    features = hk.Flatten()(jax.nn.relu(Conv2DValid(3, 2, 1, name="conv")(images)))
    return heads.DuelingQHead(2, (4,))(jax.nn.relu(hk.Linear(6, name="mid")(features)))

  network = hk.without_apply_rng(hk.transform(f))
  images = jnp.abs(jax.random.normal(jax.random.PRNGKey(1), (8, 4, 4, 1)))
  params = {m: dict(v) for m, v in network.init(jax.random.PRNGKey(0), images).items()}
  params["conv"]["w"] = jnp.abs(params["conv"]["w"]) + 0.1  # channels 0 and 1 fire on positive images
  params["conv"]["w"] = params["conv"]["w"].at[..., 2].set(-1.0)  # channel 2 never does
  params["mid"]["w"] = params["mid"]["w"].at[:, 0].set(-1.0)  # nor does unit 0 of `mid`
  new, counts, _ = redo_reset(network.apply, params, _init(f, images, seed=3), (images,), threshold=0.0)
  assert int(counts["redo/conv"]) == 1
  new, params = jax.tree.map(np.asarray, new), jax.tree.map(np.asarray, params)
  rows = np.asarray(new["mid"]["w"])  # [3·3 positions × 3 channels, 6]
  np.testing.assert_array_equal(rows[2::3], 0.0)
  live = np.arange(27) % 3 != 2  # rows of the live channels: only a recycled `mid` unit changes them
  reset_mid = [i for i in range(6) if not np.array_equal(new["mid"]["w"][live, i], params["mid"]["w"][live, i])]
  assert 0 in reset_mid and len(reset_mid) == int(counts["redo/mid"])
  kept = [i for i in range(6) if i not in reset_mid]
  np.testing.assert_array_equal(rows[0::3][:, kept], np.asarray(params["mid"]["w"])[0::3][:, kept])
  # `mid`'s activation feeds both dueling streams: a recycled unit of `mid` loses its rows in both.
  for stream in ("value", "advantage"):
    module = f"dueling_q_head/{stream}/~/linear_0"
    np.testing.assert_array_equal(np.asarray(new[module]["w"])[reset_mid], 0.0)
  np.testing.assert_allclose(network.apply(new, images), network.apply(params, images), rtol=1e-5, atol=1e-6)


def test_reset_moments_zeroes_the_recycled_entries_of_every_moment_and_keeps_the_count():
  import optax
  from repertory.plasticity.redo import reset_moments
  params = {"layer": {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}}
  optimizer = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(1e-3))
  state = optimizer.init(params)
  _, state = optimizer.update(jax.tree.map(lambda p: 2 * p, params), state, params)
  recycled = {"layer": {"w": jnp.asarray([[True, False, False], [False, False, True]]), "b": jnp.zeros(3, bool)}}
  adam = reset_moments(optimizer, state, recycled)[1][0]
  for moment, value in ((adam.mu, 0.1 * 2), (adam.nu, 0.001 * 4)):  # (1 − b) · g and (1 − b2) · g² after one step
    np.testing.assert_allclose(moment["layer"]["w"], np.where(recycled["layer"]["w"], 0.0, value), rtol=1e-6)
    np.testing.assert_allclose(moment["layer"]["b"], value, rtol=1e-6)
  assert int(adam.count) == 1
