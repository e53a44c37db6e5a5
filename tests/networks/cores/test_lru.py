"""LRU (arXiv 2303.06349): the associative scan equals the sequential loop (resets included), |λ| < 1
for any parameter value, ring initialisation within [r_min, r_max], γ = √(1 − |λ|²) at init."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from repertory.networks.cores import LinearRecurrentUnit, LRUCore
from repertory.networks.cores.lru import linear_recurrence_scan, lru_lambda


def test_associative_scan_equals_sequential_loop():
  keys = jax.random.split(jax.random.PRNGKey(0), 5)
  t, b, n = 9, 3, 4
  a = (jax.random.uniform(keys[0], (t, b, n)) * jnp.exp(1j * jax.random.uniform(keys[1], (t, b, n)) * 6))
  inputs = jax.random.normal(keys[2], (t, b, n)) + 1j * jax.random.normal(keys[3], (t, b, n))
  x0 = jax.random.normal(keys[4], (b, n)) + 0j
  resets = np.zeros((t, b), bool)
  resets[0, 0] = resets[4, 1] = resets[8, 2] = True
  scanned = jax.jit(linear_recurrence_scan)(a, inputs, x0, jnp.asarray(resets))
  x = np.asarray(x0)
  for step in range(t):
    x = np.where(resets[step][:, None], 0.0, np.asarray(a[step]) * x) + np.asarray(inputs[step])
    np.testing.assert_allclose(scanned[step], x, rtol=1e-5, atol=1e-5)


def test_lambda_magnitude_below_one_for_any_parameters():
  nu_log = jnp.array([-1e4, -100.0, -30.0, -10.0, 0.0, 5.0, 100.0, 1e4])
  theta_log = jnp.linspace(-5, 5, nu_log.shape[0])
  magnitude = jnp.abs(lru_lambda(nu_log, theta_log))
  assert bool(jnp.all(jnp.isfinite(magnitude)))
  assert bool(jnp.all(magnitude < 1.0)), magnitude
  assert bool(jnp.all(magnitude >= 0.0))


def test_ring_initialisation_and_gamma():
  r_min, r_max, max_phase = 0.5, 0.9, np.pi
  layer = hk.transform(lambda u: LinearRecurrentUnit(512, r_min, r_max, max_phase)(
      u, jnp.zeros((1, 512), jnp.complex64), jnp.zeros((2, 1), bool)))
  params = layer.init(jax.random.PRNGKey(0), jnp.ones((2, 1, 3)))["linear_recurrent_unit"]
  magnitude = np.abs(lru_lambda(params["nu_log"], params["theta_log"]))
  assert magnitude.min() >= r_min - 1e-6 and magnitude.max() <= r_max + 1e-6
  assert magnitude.min() < 0.55 and magnitude.max() > 0.88  # spread over the ring
  # |λ|² is uniform on [r_min², r_max²]: its mean is the midpoint.
  assert abs(np.mean(magnitude ** 2) - (r_min ** 2 + r_max ** 2) / 2) < 0.03
  phase = np.exp(params["theta_log"])
  assert phase.min() >= 0 and phase.max() <= max_phase + 1e-6
  np.testing.assert_allclose(np.exp(params["gamma_log"]), np.sqrt(1 - magnitude ** 2), rtol=1e-5)


def test_core_step_matches_scan_and_stays_bounded_for_long_sequences():
  """Acting (one-step recurrence) equals learning (associative scan) over a long run, and the
  outputs stay bounded (|λ| < 1)."""
  t, b = 200, 2

  def forward():
    core = LRUCore(hidden_size=16, state_size=8, r_max=0.999)
    return (lambda xs, r: core.unroll(xs, core.initial_state(b), r)), (core.unroll, core.__call__, core.initial_state)

  transformed = hk.without_apply_rng(hk.multi_transform(forward))
  xs = jax.random.normal(jax.random.PRNGKey(0), (t, b, 5))
  resets = jnp.zeros((t, b), bool)
  params = transformed.init(jax.random.PRNGKey(1), xs, resets)
  unroll, step, initial = transformed.apply
  state = initial(params, b)
  outputs, final = jax.jit(unroll)(params, xs, state, resets)

  def body(state, x):
    out, state = step(params, x, state)
    return state, out

  stepped_final, stepped = jax.jit(lambda s, xs: jax.lax.scan(body, s, xs))(state, xs)
  np.testing.assert_allclose(outputs, stepped, rtol=1e-3, atol=1e-4)
  for a, c in zip(jax.tree.leaves(final), jax.tree.leaves(stepped_final)):
    np.testing.assert_allclose(a, c, rtol=1e-3, atol=1e-4)
  assert bool(jnp.all(jnp.isfinite(outputs))) and float(jnp.abs(outputs).max()) < 1e3
