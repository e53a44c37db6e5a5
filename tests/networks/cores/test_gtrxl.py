"""GTrXL (arXiv 1910.06764): gate formula with the bias subtracted, near-identity blocks at init,
per-layer memory of previous inputs, validity mask at resets, no gradient into the memory."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory.networks.cores import GatedTransformerXL, GRUGate, GTrXLState
from repertory.networks.cores.gtrxl import GTrXLBlock, sinusoid_table

T, B, D, M, H = 10, 2, 5, 4, 8


def _core():
  return GatedTransformerXL(hidden_size=H, num_layers=2, num_heads=2, memory_size=M)


@pytest.fixture(scope="module")
def gtrxl():
  forward = hk.without_apply_rng(hk.transform(
      lambda xs, state, resets: _core().unroll_with_layer_inputs(xs, state, resets)))
  initial = hk.without_apply_rng(hk.transform(lambda batch: _core().initial_state(batch)))
  xs = jax.random.normal(jax.random.PRNGKey(0), (T, B, D))
  resets = jnp.zeros((T, B), bool).at[0].set(True)
  state = initial.apply({}, B)
  params = forward.init(jax.random.PRNGKey(1), xs, state, resets)
  return params, jax.jit(forward.apply), state, xs


def test_gate_with_zero_weights_is_scaled_identity():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 6))
  y = jax.random.normal(jax.random.PRNGKey(1), (3, 6)) * 5
  for b_g in (2.0, -1.0, 0.0):
    gate = hk.without_apply_rng(hk.transform(lambda x, y, b=b_g: GRUGate(b)(x, y)))
    params = gate.init(jax.random.PRNGKey(2), x, y)
    params = jax.tree.map(jnp.zeros_like, params)
    params["gru_gate"]["b_g"] = jnp.full((6,), b_g)
    out = gate.apply(params, x, y)
    np.testing.assert_allclose(out, (1 - jax.nn.sigmoid(-b_g)) * x, rtol=1e-6)
  # Subtracted bias: b_g = 2 keeps 1 − σ(−2) ≈ 0.88 of x (a port that adds it would keep ≈ 0.12).
  assert abs((1 - jax.nn.sigmoid(-2.0)) - 0.8808) < 1e-3


def test_gate_bias_is_subtracted_inside_z():
  """With only U_z = I nonzero, z = σ(x − b_g): check against the hand formula."""
  x = jnp.linspace(-2, 2, 6)[None]
  y = jnp.zeros_like(x)
  gate = hk.without_apply_rng(hk.transform(lambda x, y: GRUGate(2.0)(x, y)))
  params = jax.tree.map(jnp.zeros_like, gate.init(jax.random.PRNGKey(0), x, y))
  params["gru_gate/u_z"] = {"w": jnp.eye(6)}
  params["gru_gate"]["b_g"] = jnp.full((6,), 2.0)
  z = jax.nn.sigmoid(x - 2.0)
  np.testing.assert_allclose(gate.apply(params, x, y), (1 - z) * x, rtol=1e-6)


def test_block_is_near_identity_at_init():
  e = jax.random.normal(jax.random.PRNGKey(0), (4, 6, 32))
  memory = jnp.zeros((4, 8, 32))
  length = e.shape[1]
  distance = jnp.arange(length)[:, None] + 8 - jnp.arange(8 + length)[None, :]
  key_episode = jnp.concatenate([jnp.full((4, 8), -1), jnp.zeros((4, length), jnp.int32)], axis=1)
  query_episode = jnp.zeros((4, length), jnp.int32)

  block = hk.without_apply_rng(hk.transform(
      lambda e: GTrXLBlock(4, 128, 8, 2.0, name="block")(e, memory, key_episode, query_episode, distance)))
  params = block.init(jax.random.PRNGKey(1), e)
  apply = jax.jit(block.apply)

  def deviation(b_g):  # b_g is a learned parameter initialised to gate_bias: set it for both gates
    p = {k: ({"b_g": jnp.full_like(v["b_g"], b_g)} if k.endswith("gate") else v) for k, v in params.items()}
    return float(jnp.linalg.norm(apply(p, e) - e) / jnp.linalg.norm(e))

  deviations = {b_g: deviation(b_g) for b_g in (0.0, 2.0, 6.0)}
  assert deviations[2.0] < 0.35, deviations  # two gates, each keeps ≈ 0.88 of the stream
  assert deviations[6.0] < deviations[2.0] < deviations[0.0]


def test_memory_holds_each_layers_previous_inputs(gtrxl):
  params, apply, state, xs = gtrxl
  resets = jnp.zeros((T, B), bool).at[0].set(True)
  _, final, layer_inputs = apply(params, xs, state, resets)
  # Layer 0's inputs are the embedding of the observations.
  w, b = params["gated_transformer_xl/~/embedding"]["w"], params["gated_transformer_xl/~/embedding"]["b"]
  np.testing.assert_allclose(layer_inputs[0], xs @ w + b, rtol=1e-5, atol=1e-6)
  for memory, inputs in zip(final.memory, layer_inputs):
    np.testing.assert_allclose(memory, jnp.swapaxes(inputs[-M:], 0, 1), rtol=1e-6)
  assert bool(final.valid.all())
  assert not np.allclose(final.memory[0], final.memory[1])
  # Step by step: after step t the newest slot of layer l is that layer's input at t.
  step_state = state
  for t in range(T):
    _, step_state, step_inputs = apply(params, xs[t:t + 1], step_state, resets[t:t + 1])
    for l in range(2):
      np.testing.assert_allclose(step_state.memory[l][:, -1], layer_inputs[l][t], rtol=1e-4, atol=1e-5)
      np.testing.assert_allclose(step_inputs[l][0], layer_inputs[l][t], rtol=1e-4, atol=1e-5)
    if t == 1:  # before the memory is full, only the filled slots are valid
      np.testing.assert_array_equal(step_state.valid, [[False, False, True, True]] * B)
      assert float(jnp.abs(step_state.memory[0][:, :2]).max()) == 0.0


def test_reset_inside_window_invalidates_older_slots(gtrxl):
  params, apply, state, xs = gtrxl
  resets = jnp.zeros((T, B), bool).at[0].set(True).at[T - 2, 1].set(True)
  _, final, _ = apply(params, xs, state, resets)
  np.testing.assert_array_equal(final.valid, [[True] * 4, [False, False, True, True]])
  assert float(jnp.abs(final.memory[0][1, :2]).max()) == 0.0


def test_no_gradient_into_memory(gtrxl):
  params, apply, state, xs = gtrxl
  resets = jnp.zeros((T, B), bool).at[0].set(True)
  _, warm, _ = apply(params, xs, state, resets)
  no_resets = jnp.zeros((T, B), bool)

  def loss(memory, xs):
    outputs, _, _ = apply(params, xs, GTrXLState(memory, warm.valid), no_resets)
    return jnp.sum(outputs ** 2)

  g_memory, g_xs = jax.grad(loss, argnums=(0, 1))(warm.memory, xs)
  for g in g_memory:
    assert float(jnp.abs(g).max()) == 0.0
  assert float(jnp.abs(g_xs).max()) > 0.0
  # The memory is used in the forward pass (so the zero gradient is the stop-gradient at work).
  other = tuple(m + jax.random.normal(jax.random.PRNGKey(9), m.shape) for m in warm.memory)
  assert not np.allclose(apply(params, xs, GTrXLState(other, warm.valid), no_resets)[0],
                         apply(params, xs, warm, no_resets)[0])


def test_sinusoid_table():
  table = sinusoid_table(5, 8)
  assert table.shape == (5, 8)
  np.testing.assert_allclose(table[0], [0, 0, 0, 0, 1, 1, 1, 1], atol=1e-7)
  np.testing.assert_allclose(table[3, 0], np.sin(3.0), rtol=1e-6)
  np.testing.assert_allclose(table[3, 5], np.cos(3.0 / 10000 ** (2 / 8)), rtol=1e-6)
