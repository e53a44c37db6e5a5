"""Powerpropagation (arXiv 2110.00296) and Top-KAST (arXiv 2106.03517) layers, pruning, penalty, registry."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory.errors import ConfigError
from repertory.networks import sparse
from repertory.networks.conv import Conv2DValid, conv2d_valid


UNIFORM = hk.initializers.RandomUniform(-1.0, 1.0)  # cheap to compile; distinct magnitudes almost surely


def _normal(seed, shape):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _transformed(make_layer):
  return hk.without_apply_rng(hk.transform(lambda x: make_layer()(x)))


def _run(make_layer, x, params=None, seed=0):
  """(params, output, dL/dparams) for L = Σ c·output with c ~ N(0, 1) fixed by `seed`, in one compiled call;
  `params` defaults to the layer's initial parameters."""
  f = _transformed(make_layer)

  @jax.jit
  def run(params):
    params = f.init(jax.random.PRNGKey(seed), x) if params is None else params
    out = f.apply(params, x)
    c = _normal(seed + 1, out.shape)
    return params, out, jax.grad(lambda p: jnp.sum(c * f.apply(p, x)))(params)

  return run(params)


def _init(make_layer, x, seed=0):
  return _transformed(make_layer).init(jax.random.PRNGKey(seed), x)


def _top_mask(w, count):
  """Independent reference: 1 on the `count` largest |w| (stable order, so ties go to the lower index)."""
  flat = np.abs(np.asarray(w)).reshape(-1)
  order = np.argsort(-flat, kind="stable")
  mask = np.zeros(flat.size)
  mask[order[:count]] = 1
  return mask.reshape(np.shape(w))


def _raises_one_line_config_error(fn):
  with pytest.raises(ConfigError) as error:
    fn()
  assert "\n" not in str(error.value)
  return str(error.value)


# Powerpropagation ----------------------------------------------------------------------------------------


def test_powerprop_weight_and_gradient_by_hand():
  v = jnp.array([-2.0, 0.5, 3.0, 0.0])
  c = jnp.array([1.0, -2.0, 0.5, 1.0])

  def weight_and_grad(alpha):
    loss = lambda v: jnp.sum(c * sparse.powerprop_weight(v, alpha))  # noqa: E731
    return jax.jit(lambda v: (sparse.powerprop_weight(v, alpha), jax.grad(loss)(v)))(v)

  w, grad = weight_and_grad(2.0)
  np.testing.assert_allclose(w, [-4.0, 0.25, 9.0, 0.0])
  np.testing.assert_allclose(grad, [4.0, -2.0, 3.0, 0.0])  # eq. 2: α|v|^(α−1)·c = 2|v|·c; finite at 0
  w, grad = weight_and_grad(3.0)
  np.testing.assert_allclose(w, [-8.0, 0.125, 27.0, 0.0])
  np.testing.assert_allclose(grad, [12.0, -1.5, 13.5, 0.0])  # 3v²·c
  w, grad = weight_and_grad(1.0)  # the dense layer, gradient 1 even at v = 0
  np.testing.assert_allclose(w, v)
  np.testing.assert_allclose(grad, c)


def test_powerprop_linear_is_a_dense_layer_with_the_effective_weights_and_eq2_gradient():
  x = _normal(1, (3, 5))
  params, out, grads = _run(lambda: sparse.PowerpropLinear(4, alpha=2.0, w_init=UNIFORM, name="layer"), x)
  v = np.asarray(params["layer"]["w"])
  assert params["layer"]["w"].shape == (5, 4) and params["layer"]["b"].shape == (4,)
  w = np.sign(v) * v ** 2
  np.testing.assert_allclose(sparse.effective_weights(params, 2.0)["layer"]["w"], w, rtol=1e-6)
  np.testing.assert_array_equal(sparse.effective_weights(params, 2.0)["layer"]["b"], params["layer"]["b"])
  dense_params = {"layer": {"w": jnp.asarray(w), "b": params["layer"]["b"] + 0.5}}
  _, dense_out, dense_grads = _run(lambda: hk.Linear(4, name="layer"), x, dense_params)
  np.testing.assert_allclose(out + 0.5, dense_out, rtol=1e-5, atol=1e-6)
  # Gradient through the layer (eq. 2): α|v|^(α−1) times the dense layer's gradient at w.
  np.testing.assert_allclose(grads["layer"]["w"], 2.0 * np.abs(v) * dense_grads["layer"]["w"], rtol=1e-5,
                             atol=1e-6)


def test_powerprop_initialisation_gives_the_dense_layers_initial_weights():
  x = np.ones((2, 7, 7, 3), np.float32)

  def layers(linear, conv):
    return hk.transform(lambda x: (linear(6, name="linear")(x[:, 0, 0]), conv(4, 3, 2, name="conv")(x)))

  powerprop, dense = layers(sparse.PowerpropLinear, sparse.PowerpropConv2D), layers(hk.Linear, Conv2DValid)
  pp, dense = jax.jit(lambda key: (powerprop.init(key, x), dense.init(key, x)))(jax.random.PRNGKey(0))
  u = np.asarray(dense["linear"]["w"])
  np.testing.assert_allclose(pp["linear"]["w"], np.sign(u) * np.sqrt(np.abs(u)), rtol=1e-5)  # v = √u, α = 2
  for name in ("linear", "conv"):
    np.testing.assert_allclose(sparse.effective_weights(pp)[name]["w"], dense[name]["w"], rtol=1e-4, atol=1e-7)
  assert not np.allclose(pp["conv"]["w"], dense["conv"]["w"])  # v itself is the α-th root
  cube_root = sparse.powerprop_initializer(hk.initializers.Constant(np.array([-8.0, 0.125, 27.0])), 3.0)
  np.testing.assert_allclose(cube_root((3,), jnp.float32), [-2.0, 0.5, 3.0], rtol=1e-6)


def test_powerprop_conv_is_conv2d_valid_with_the_effective_kernel():
  x = _normal(3, (2, 9, 9, 3))
  params, out, _ = _run(lambda: sparse.PowerpropConv2D(4, 3, 2, w_init=UNIFORM, name="conv"), x)
  assert params["conv"]["w"].shape == (3, 3, 3, 4) and set(params["conv"]) == {"w", "b"}
  w = sparse.effective_weights(params)["conv"]["w"]
  np.testing.assert_allclose(out, conv2d_valid(x, w, 2) + params["conv"]["b"], rtol=1e-5, atol=1e-6)


def test_prune_by_magnitude_zeroes_exactly_the_requested_count_and_keeps_the_largest():
  w = _normal(4, (4, 5))
  kernel = _normal(5, (3, 3, 2, 4))
  tree = {"linear": {"w": w, "b": np.array([1e-9, 0.0, 3.0, -1e-9, 2.0], np.float32)}, "conv": {"w": kernel}}
  pruned = sparse.prune_by_magnitude(tree, 0.3)
  assert np.sum(np.asarray(pruned["linear"]["w"]) == 0) == 6  # 30% of 20
  np.testing.assert_array_equal(pruned["linear"]["w"], w * _top_mask(w, 14))
  assert np.sum(np.asarray(pruned["conv"]["w"]) == 0) == 22  # 72 − round(0.7·72) = 72 − 50
  np.testing.assert_array_equal(pruned["conv"]["w"], kernel * _top_mask(kernel, 50))
  np.testing.assert_array_equal(pruned["linear"]["b"], tree["linear"]["b"])  # biases are never pruned
  ties = sparse.prune_by_magnitude({"w": np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]], np.float32)}, 0.5)
  assert np.count_nonzero(ties["w"]) == 3


def test_bad_powerprop_settings_raise_config_error():
  ones = np.ones((1, 2), np.float32)
  for sparsity in (0.0, 1.0, -0.1, 1.5, float("nan")):
    assert "sparsity" in _raises_one_line_config_error(lambda: sparse.prune_by_magnitude({"w": ones}, sparsity))
  for alpha in (0.5, 0.0, float("nan")):
    assert "alpha" in _raises_one_line_config_error(lambda: sparse.effective_weights({"w": ones}, alpha))
    _raises_one_line_config_error(lambda: _transformed(lambda: sparse.PowerpropLinear(2, alpha)).init(None, ones))


# Top-KAST -------------------------------------------------------------------------------------------------


def test_kept_count_rounds_half_up_and_keeps_at_least_one():
  assert sparse.kept_count(0.2, 100) == 20
  assert sparse.kept_count(0.5, 5) == 3  # 2.5 rounds up
  assert sparse.kept_count(0.2, 21) == 4  # 4.2
  assert sparse.kept_count(0.001, 10) == 1
  assert sparse.kept_count(1.0, 7) == 7


def test_topkast_forward_weight_has_exactly_the_requested_nonzeros_even_with_ties():
  w = _normal(6, (10, 10))
  forward = sparse.topkast_weight(w, 0.2, 0.5)
  assert np.count_nonzero(forward) == 20
  np.testing.assert_array_equal(forward, w * _top_mask(w, 20))
  tied = np.where(np.arange(21).reshape(7, 3) % 2 == 0, 1.0, -1.0).astype(np.float32)  # every |w| equal
  assert np.count_nonzero(sparse.topkast_weight(tied, 0.2, 0.5)) == 4  # round(0.2·21)
  forward_mask, backward_mask = sparse.topkast_masks(tied, 0.2, 0.5)
  assert np.sum(forward_mask) == 4 and np.sum(backward_mask) == 11  # round(10.5) = 11
  assert np.all(np.asarray(backward_mask) >= np.asarray(forward_mask))  # A ⊆ B


# Linear w: 10·8 = 80 entries → |A| = 16, |B| = 40; conv w: 3·3·3·5 = 135 → |A| = 27, |B| = round(67.5) = 68.
@pytest.mark.parametrize("kind, forward_count, backward_count", [("linear", 16, 40), ("conv", 27, 68)])
def test_topkast_layer_is_a_dense_layer_with_the_masked_weight_and_gradients_reach_exactly_b(
    kind, forward_count, backward_count):
  if kind == "linear":
    x = _normal(7, (6, 10))
    layer_fn = lambda: sparse.TopKASTLinear(8, 0.2, 0.5, w_init=UNIFORM, name="layer")  # noqa: E731
    dense_fn = lambda: hk.Linear(8, name="layer")  # noqa: E731
  else:
    x = _normal(8, (2, 8, 8, 3))
    layer_fn = lambda: sparse.TopKASTConv2D(5, 3, 2, 0.2, 0.5, w_init=UNIFORM, name="layer")  # noqa: E731
    dense_fn = lambda: Conv2DValid(5, 3, 2, name="layer")  # noqa: E731
  params, out, grads = _run(layer_fn, x)
  w, b = params["layer"]["w"], params["layer"]["b"]
  assert set(params["layer"]) == {"w", "b"}
  forward_mask, backward_mask = _top_mask(w, forward_count), _top_mask(w, backward_count)
  masked = {"layer": {"w": w * forward_mask, "b": b}}
  _, dense_out, dense_grads = _run(dense_fn, x, masked)
  np.testing.assert_allclose(out, dense_out, rtol=1e-5, atol=1e-6)
  # The gradient is the dense gradient at the masked weight (once, not twice, on A), on B only.
  assert np.all(np.asarray(dense_grads["layer"]["w"]) != 0)
  np.testing.assert_array_equal(np.asarray(grads["layer"]["w"]) != 0, backward_mask == 1)
  np.testing.assert_allclose(grads["layer"]["w"], dense_grads["layer"]["w"] * backward_mask, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(grads["layer"]["b"], dense_grads["layer"]["b"], rtol=1e-5, atol=1e-5)


def test_topkast_penalty_by_hand():
  w = np.array([[5.0, -4.0, 3.0, -2.0, 1.0], [0.5, -0.4, 0.3, -0.2, 0.1]], np.float32)
  params = {"a": {"w": w, "b": np.full((5,), 100.0, np.float32)}, "b": {"w": -w}}
  # D = 0.2 of 10: A = {5, −4}; D + M = 0.5: B = A ∪ {3, −2, 1}; the rest is free.
  per_tensor = (25.0 + 16.0) + (9.0 + 4.0 + 1.0) / 0.2
  np.testing.assert_allclose(sparse.topkast_penalty(params, 0.2, 0.5, coefficient=1.0), 2 * per_tensor, rtol=1e-6)
  np.testing.assert_allclose(sparse.topkast_penalty(params, 0.2, 0.5), 2 * per_tensor * 1e-4, rtol=1e-6)
  grad = jax.jit(jax.grad(lambda p: sparse.topkast_penalty(p, 0.2, 0.5, coefficient=1.0)))(params)["a"]
  np.testing.assert_allclose(grad["w"], [[10.0, -8.0, 30.0, -20.0, 10.0], [0.0] * 5], rtol=1e-6)
  np.testing.assert_array_equal(grad["b"], 0.0)


def test_bad_topkast_densities_raise_config_error():
  for forward_density, backward_density in ((0.0, 0.5), (-0.1, 0.5), (0.2, 1.5), (float("nan"), 0.5),
                                            (0.5, 0.2)):
    ones = np.ones((1, 2), np.float32)
    message = _raises_one_line_config_error(
        lambda: _transformed(lambda: sparse.TopKASTLinear(2, forward_density, backward_density)).init(None, ones))
    assert "density" in message
    _raises_one_line_config_error(lambda: sparse.topkast_weight(ones, forward_density, backward_density))
    _raises_one_line_config_error(lambda: sparse.topkast_penalty({"w": ones}, forward_density, backward_density))


# Registry ---------------------------------------------------------------------------------------------------


def test_make_linear_and_make_conv_build_each_kind_by_name():
  expected_linear = {"dense": hk.Linear, "powerprop": sparse.PowerpropLinear, "topkast": sparse.TopKASTLinear}
  expected_conv = {"dense": Conv2DValid, "powerprop": sparse.PowerpropConv2D, "topkast": sparse.TopKASTConv2D}
  assert sparse.LAYER_KINDS == ("dense", "powerprop", "topkast")
  x = np.ones((1, 6, 6, 2), np.float32)
  for kind in sparse.LAYER_KINDS:
    def build(x, kind=kind):
      linear = sparse.make_linear(kind, 3, name="head")
      conv = sparse.make_conv(kind, 4, 3, 1, name="torso")
      assert type(linear) is expected_linear[kind] and type(conv) is expected_conv[kind]
      return linear(hk.Flatten()(conv(x)))
    params = jax.eval_shape(hk.transform(build).init, jax.random.PRNGKey(0), x)
    assert params["head"]["w"].shape == (64, 3) and params["torso"]["w"].shape == (3, 3, 2, 4)
  # Options reach the layer: α = 3 makes w = v|v|².
  f = _transformed(lambda: sparse.make_linear("powerprop", 2, name="head", alpha=3.0, w_init=UNIFORM))
  ones = np.ones((1, 3), np.float32)
  params = f.init(jax.random.PRNGKey(0), ones)
  v = np.asarray(params["head"]["w"])
  np.testing.assert_allclose(f.apply(params, ones), np.sum(v * np.abs(v) ** 2, 0, keepdims=True), rtol=1e-5)


def test_registry_rejects_unknown_kinds_and_options():
  message = _raises_one_line_config_error(lambda: sparse.make_linear("lottery", 2))
  assert all(kind in message for kind in sparse.LAYER_KINDS)
  _raises_one_line_config_error(lambda: sparse.make_conv("sparse", 2, 3, 1))
  message = _raises_one_line_config_error(lambda: sparse.make_linear("dense", 2, alpha=2.0))
  assert "alpha" in message
  _raises_one_line_config_error(lambda: sparse.make_conv("powerprop", 2, 3, 1, forward_density=0.2))
