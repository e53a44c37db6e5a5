"""Poincaré-ball maths, hyperbolic MLR and S-RYM (arXiv 2210.01542, Ganea et al. arXiv 1805.09112)."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory.errors import ConfigError
from repertory.networks import hyperbolic as hyp
from repertory.networks import poincare


def _finite(tree):
  return all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(tree))


def test_expmap0_stays_inside_ball_even_for_huge_inputs():
  v = jax.random.normal(jax.random.PRNGKey(0), (5, 32))
  for scale in (1e-8, 1.0, 10.0, 1e6, 1e30):
    norms = jnp.linalg.norm(poincare.expmap0(scale * v), axis=-1)
    assert bool(jnp.all(norms < 1.0)), scale
  # Unprojected formula by hand: ‖exp₀(v)‖ = tanh(‖v‖).
  y = poincare.expmap0(0.3 * v, project_output=False)
  np.testing.assert_allclose(jnp.linalg.norm(y, axis=-1), jnp.tanh(jnp.linalg.norm(0.3 * v, axis=-1)), rtol=1e-5)
  # Curvature c: ‖exp₀(v)‖ < 1/√c.
  assert bool(jnp.all(jnp.linalg.norm(poincare.expmap0(1e6 * v, c=4.0), axis=-1) < 0.5))
  np.testing.assert_array_equal(poincare.expmap0(jnp.zeros(4)), jnp.zeros(4))


def test_logmap0_inverts_expmap0():
  v = jax.random.normal(jax.random.PRNGKey(1), (6, 8))
  v = v / jnp.linalg.norm(v, axis=-1, keepdims=True) * jnp.linspace(0.0, 2.5, 6)[:, None]
  for c in (1.0, 0.5):
    np.testing.assert_allclose(poincare.logmap0(poincare.expmap0(v, c), c), v, atol=1e-4)
  y = 0.9 * poincare.project(jax.random.normal(jax.random.PRNGKey(2), (4, 8)))
  np.testing.assert_allclose(poincare.expmap0(poincare.logmap0(y)), y, atol=1e-5)


def test_mobius_addition_identities():
  k1, k2 = jax.random.split(jax.random.PRNGKey(3))
  x = 0.8 * poincare.expmap0(jax.random.normal(k1, (7, 16)))
  y = 0.8 * poincare.expmap0(jax.random.normal(k2, (7, 16)))
  np.testing.assert_allclose(poincare.mobius_add(x, jnp.zeros_like(x)), x, atol=1e-6)
  np.testing.assert_allclose(poincare.mobius_add(jnp.zeros_like(x), x), x, atol=1e-6)
  np.testing.assert_allclose(poincare.mobius_add(-x, x), 0.0, atol=1e-6)
  np.testing.assert_allclose(poincare.mobius_add(-x, poincare.mobius_add(x, y)), y, atol=1e-5)  # left cancellation
  # 1-D hand check: a ⊕ b = (a + b)/(1 + ab) (relativistic velocity addition).
  np.testing.assert_allclose(poincare.mobius_add(jnp.array([0.5]), jnp.array([0.3])), [0.8 / 1.15], rtol=1e-6)
  assert bool(jnp.all(jnp.linalg.norm(poincare.mobius_add(x, y), axis=-1) < 1.0))


def test_no_nan_gradients_at_zero_and_huge_inputs():
  for scale in (0.0, 1e-12, 1.0, 1e6, 1e30):
    v = scale * jnp.ones((3, 32))
    grads = [
        jax.grad(lambda z: jnp.sum(poincare.expmap0(z)))(v),
        jax.grad(lambda z: jnp.sum(poincare.logmap0(poincare.expmap0(z))))(v),
        jax.grad(lambda z: jnp.sum(poincare.safe_norm(z)))(v),
        jax.grad(lambda z: jnp.sum(poincare.project(z)))(v),
        jax.grad(lambda z: jnp.sum(poincare.mobius_add(poincare.expmap0(z), poincare.expmap0(-z))))(v),
    ]
    assert _finite(grads), scale
  # Gradient of the norm is exact away from 0: ∂‖v‖/∂v = v/‖v‖.
  v = jnp.array([3.0, 4.0])
  np.testing.assert_allclose(jax.grad(poincare.safe_norm)(v), [0.6, 0.8], rtol=1e-6)
  np.testing.assert_allclose(jax.grad(poincare.safe_norm)(1e25 * v), [0.6, 0.8], rtol=1e-6)


def _ganea_reference(x, w, p, c=1.0):
  """Unexpanded Ganea eq. 25 with a_p = (1 − c‖p‖²) w, via mobius_add (float64 numpy-free JAX)."""
  z = poincare.mobius_add(-p, x, c)
  a = (1.0 - c * jnp.sum(p * p)) * w
  lam = 2.0 / (1.0 - c * jnp.sum(p * p))
  a_norm = jnp.linalg.norm(a)
  arg = 2.0 * jnp.sqrt(c) * jnp.dot(z, a) / ((1.0 - c * jnp.sum(z * z)) * a_norm)
  return lam * a_norm / jnp.sqrt(c) * jnp.arcsinh(arg)


def test_mlr_logits_match_ganea_formula_and_flip_sign_across_plane():
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(4), 3)
  d = 6
  w = jax.random.normal(k1, (1, 1, d))
  p = 0.6 * poincare.expmap0(jax.random.normal(k2, (1, 1, d)))
  xs = 0.9 * poincare.expmap0(jax.random.normal(k3, (10, 1, d)))
  logits = poincare.poincare_mlr_logits(xs, w, p)[:, 0, 0]
  reference = jax.vmap(lambda x: _ganea_reference(x[0], w[0, 0], p[0, 0]))(xs)
  np.testing.assert_allclose(logits, reference, rtol=2e-4, atol=2e-4)
  # Points p ⊕ (±s ŵ) lie on opposite sides of the plane; p ⊕ (s u) with u ⊥ w lies on it.
  w_hat = w[0, 0] / jnp.linalg.norm(w[0, 0])
  u = jnp.zeros(d).at[0].set(1.0)
  u = u - jnp.dot(u, w_hat) * w_hat
  u = u / jnp.linalg.norm(u)
  s = jnp.array([0.05, 0.5, 0.95])[:, None]
  points = poincare.mobius_add(p[0, 0], jnp.concatenate([s * w_hat, -s * w_hat, s * u]))
  outs = poincare.poincare_mlr_logits(points[:, None], w, p)[:, 0, 0].reshape(3, 3).T  # rows: (plus, minus, on)
  for out in outs:
    assert bool(jnp.all(jnp.isfinite(out)))
    assert float(out[0]) > 0 > float(out[1])
    np.testing.assert_allclose(out[0], -out[1], rtol=1e-3)
    assert abs(float(out[2])) < 1e-3 * abs(float(out[0]))
  # Near the boundary the logits stay finite.
  edge = poincare.expmap0(1e6 * jax.random.normal(k3, (4, 1, d)))
  assert _finite(poincare.poincare_mlr_logits(edge, w, p))


def test_poincare_mlr_module_sums_balls_and_scales_by_half():
  def run(dim, ball_dim):
    f = hk.transform(lambda x: hyp.PoincareMLR(5, ball_dim=ball_dim)(x))
    x = 0.5 * poincare.expmap0(jax.random.normal(jax.random.PRNGKey(5), (3, dim)))
    params = f.init(jax.random.PRNGKey(6), x)
    params = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(7), a.shape), params)
    return f.apply(params, None, x), params["poincare_mlr"], x

  out, p, x = run(64, 32)  # 64 = 2 balls of 32 dims.
  assert p["normals"].shape == (5, 2, 32) and out.shape == (3, 5)
  offsets = poincare.expmap0(p["offsets_tangent"])
  manual = poincare.poincare_mlr_logits(x.reshape(3, 2, 32), p["normals"], offsets).sum(-1) * 0.5
  np.testing.assert_allclose(out, manual, rtol=1e-5, atol=1e-6)
  out, p, x = run(40, 32)  # 40 is not a multiple of 32: one ball of 40 dims.
  assert p["normals"].shape == (5, 1, 40)
  manual = 0.5 * poincare.poincare_mlr_logits(x[:, None], p["normals"], poincare.expmap0(p["offsets_tangent"]))[..., 0]
  np.testing.assert_allclose(out, manual, rtol=1e-5, atol=1e-6)


def test_spectral_norm_linear_top_singular_value_is_one():
  f = hk.transform_with_state(lambda x, t: hyp.SpectralNormLinear(24)(x, t))
  eye = jnp.eye(40)
  params, state = f.init(jax.random.PRNGKey(0), eye, True)
  w = params["sn_linear"]["w"] * 7.0  # a large weight
  params = {"sn_linear": {"w": w, "b": params["sn_linear"]["b"]}}
  step = jax.jit(lambda s: f.apply(params, s, None, eye, True))
  for _ in range(30):
    w_sn, state = step(state)  # identity input -> output is the normalised weight (b = 0)
  top = np.linalg.svd(np.asarray(w_sn), compute_uv=False)[0]
  assert top == pytest.approx(1.0, rel=1e-3)
  assert float(state["sn_linear/spectral_norm"]["sigma"]) == pytest.approx(
      np.linalg.svd(np.asarray(w), compute_uv=False)[0], rel=1e-3)
  # Not training: the state is left unchanged.
  _, frozen = f.apply(params, state, None, eye, False)
  jax.tree.map(np.testing.assert_array_equal, frozen, state)


def test_srym_head_and_hyperbolic_encoder():
  num_actions, num_atoms = 3, 51
  f = hk.transform_with_state(lambda x, t: hyp.SRYMHead(num_actions * num_atoms)(hyp.SpectralNormConvEncoder()(x, t), t))
  images = jax.random.randint(jax.random.PRNGKey(0), (2, 50, 50, 4), 0, 256).astype(jnp.uint8)
  params, state = f.init(jax.random.PRNGKey(1), images, False)
  assert set(state) == {"sn_conv_encoder/sn_conv_0/spectral_norm", "sn_conv_encoder/sn_conv_1/spectral_norm",
                        "srym_head/sn_linear_0/spectral_norm"}
  logits, new_state = jax.jit(lambda p, s: f.apply(p, s, None, images, True))(params, state)
  assert logits.shape == (2, num_actions * num_atoms) and _finite(logits)
  assert not np.allclose(new_state["sn_conv_encoder/sn_conv_0/spectral_norm"]["u0"],
                         state["sn_conv_encoder/sn_conv_0/spectral_norm"]["u0"])
  grads = jax.jit(jax.grad(lambda p: jnp.sum(f.apply(p, new_state, None, images, True)[0])))(params)
  assert _finite(grads)


def test_srym_head_clips_huge_features_without_nan():
  f = hk.transform_with_state(lambda x, t: hyp.SRYMHead(7)(x, t))
  feats = jnp.concatenate([jnp.zeros((1, 64)), 1e6 * jnp.ones((1, 64))])
  params, state = f.init(jax.random.PRNGKey(0), feats, True)
  out, _ = f.apply(params, state, None, feats, True)
  assert out.shape == (2, 7) and _finite(out)
  grads = jax.jit(jax.grad(lambda p, x: jnp.sum(f.apply(p, state, None, x, True)[0]), argnums=(0, 1)))(
      params, feats)
  assert _finite(grads)
  # Zero features map to the origin; with zero offsets the logits are exactly 0.
  np.testing.assert_allclose(out[0], 0.0, atol=1e-6)


def test_bad_config_raises_config_error():
  with pytest.raises(ConfigError):
    hyp.SRYMConfig(curvature=0.0)
  with pytest.raises(ConfigError):
    hk.transform(lambda: hyp.SpectralNormConvEncoder(layers="resnet")).init(None)
