"""A-LIX (arXiv 2207.00986): LIX layer, normalised discontinuity, adaptive S and its optimiser."""

import dataclasses

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from repertory.errors import ConfigError
from repertory.networks import alix, alix_encoder, alix_optimizer, conv


def _lix(x, shift, is_training, per_example=False, seed=0):
  f = hk.transform(lambda x, s: alix.LocalSignalMixing(2.0, per_example)(x, s, is_training))
  return f.apply({}, jax.random.PRNGKey(seed) if is_training else None, x, jnp.asarray(shift))


def test_zero_shift_is_identity_in_training():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 7, 7, 4))
  for per_example in (False, True):
    np.testing.assert_allclose(_lix(x, 0.0, True, per_example), x, atol=1e-6)
  # A negative S is clipped to 0.
  np.testing.assert_allclose(_lix(x, -1.0, True), x, atol=1e-6)


def test_evaluation_is_identity():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 7, 7, 4))
  np.testing.assert_array_equal(_lix(x, 2.0, False), x)


def test_integer_shift_is_replicate_padded_roll():
  x = jnp.arange(2 * 5 * 6 * 3, dtype=jnp.float32).reshape(2, 5, 6, 3)
  out = alix.bilinear_shift(x, jnp.array([1.0, -2.0]))
  xn = np.asarray(x)
  expected = np.empty_like(xn)
  for i in range(5):
    for j in range(6):
      expected[:, i, j] = xn[:, min(max(i + 1, 0), 4), min(max(j - 2, 0), 5)]
  np.testing.assert_allclose(out, expected, atol=1e-5)
  # Interior equals jnp.roll (roll by −δ), borders repeat the edge.
  np.testing.assert_allclose(out[:, :4, 2:], jnp.roll(x, (-1, 2), axis=(1, 2))[:, :4, 2:], atol=1e-5)
  np.testing.assert_allclose(out[:, 4], x[:, 4, np.clip(np.arange(6) - 2, 0, 5)], atol=1e-5)


def test_half_pixel_shift_averages_neighbours_and_per_example_deltas():
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 1))
  out = alix.bilinear_shift(x, jnp.array([[0.5, 0.0], [0.0, -0.25]]))
  np.testing.assert_allclose(out[0, :3], 0.5 * (x[0, :3] + x[0, 1:]), atol=1e-6)
  np.testing.assert_allclose(out[0, 3], x[0, 3], atol=1e-6)  # replicate padding at the bottom edge
  np.testing.assert_allclose(out[1, :, 1:], 0.75 * x[1, :, 1:] + 0.25 * x[1, :, :3], atol=1e-6)


def test_bilinear_shift_matches_scipy_map_coordinates_on_every_map_size_of_the_torsos():
  """Against jax.scipy.ndimage.map_coordinates (order 1 = bilinear, mode "nearest" = replicate padding), on
  the DER (16×16, 3×3), Nature (20×20, 9×9, 7×7) and DrQ-v2 (41×41) maps, shifts past the border included."""
  from jax.scipy.ndimage import map_coordinates
  key = jax.random.PRNGKey(3)
  for size in (3, 7, 9, 16, 20, 41):
    k1, k2, key = jax.random.split(key, 3)
    x = jax.random.normal(k1, (3, size, size, 2))
    deltas = jax.random.uniform(k2, (3, 2), minval=-4.0, maxval=4.0)
    out = alix.bilinear_shift(x, deltas)
    rows, cols = jnp.meshgrid(jnp.arange(size, dtype=jnp.float32), jnp.arange(size, dtype=jnp.float32), indexing="ij")
    for b in range(3):
      for c in range(2):
        expected = map_coordinates(x[b, :, :, c], [rows + deltas[b, 0], cols + deltas[b, 1]], order=1, mode="nearest")
        np.testing.assert_allclose(out[b, :, :, c], expected, atol=1e-5, err_msg=f"{size}x{size}")
    np.testing.assert_allclose(alix.bilinear_shift(x, deltas[0]), alix.bilinear_shift(x, jnp.tile(deltas[:1], (3, 1))),
                               atol=1e-6)  # one δ for the batch = the same δ for every example


def test_shift_is_uniform_in_minus_s_to_s_and_clipped_at_s_max():
  # Channel 0 is the row index, channel 1 the column index: in the interior, output − input = (δ_y, δ_x).
  h = 12
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(h, dtype=jnp.float32), indexing="ij")
  x = jnp.broadcast_to(jnp.stack([rows, cols], -1)[None], (256, h, h, 2))
  for shift, bound in ((0.7, 0.7), (10.0, 2.0)):  # S above S_max = 2 is clipped to 2.
    d = np.asarray(_lix(x, shift, True, per_example=True) - x)[:, 3:-3, 3:-3]
    np.testing.assert_allclose(d, np.broadcast_to(d[:, :1, :1], d.shape), atol=1e-4)  # one δ per map
    deltas = d[:, 0, 0]  # [256, 2]
    assert np.abs(deltas).max() <= bound + 1e-5
    assert np.abs(deltas).max() > 0.9 * bound  # fills the range
    np.testing.assert_allclose(deltas.std(0), bound / np.sqrt(3.0), rtol=0.2)  # U[−S, S] std = S/√3
  # One δ per batch (authors' default): all examples get the same shift.
  same = np.asarray(_lix(x[:4], 1.0, True, per_example=False) - x[:4])[:, 3:-3, 3:-3]
  np.testing.assert_allclose(same, np.broadcast_to(same[:1], same.shape), atol=1e-5)
  assert np.abs(same).max() > 0


def test_gradient_mass_is_conserved():
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(2), 3)
  x = jax.random.normal(k1, (4, 9, 9, 3))
  cot = jax.random.normal(k2, x.shape)
  for delta in (jnp.array([0.37, -1.6]), jax.random.uniform(k3, (4, 2), minval=-2.0, maxval=2.0)):
    _, vjp = jax.vjp(lambda z: alix.bilinear_shift(z, delta), x)
    (gx,) = vjp(cot)
    np.testing.assert_allclose(gx.sum(axis=(1, 2)), cot.sum(axis=(1, 2)), rtol=1e-4, atol=1e-4)
  # Interior cotangent: every unit of gradient lands on the two (four) source pixels.
  cot = jnp.zeros((1, 9, 9, 1)).at[0, 4, 4, 0].set(1.0)
  _, vjp = jax.vjp(lambda z: alix.bilinear_shift(z, jnp.array([0.25, 0.5])), x[:1, :, :, :1])
  (gx,) = vjp(cot)
  np.testing.assert_allclose(gx[0, 4:6, 4:6, 0], [[0.375, 0.375], [0.125, 0.125]], atol=1e-6)
  assert float(gx.sum()) == pytest.approx(1.0)


def test_normalized_discontinuity_constant_and_checkerboard():
  assert float(alix.normalized_discontinuity(jnp.full((4, 6, 6, 2), 3.0))) == pytest.approx(0.0, abs=1e-7)
  board = jnp.where((jnp.arange(8)[:, None] + jnp.arange(8)[None, :]) % 2 == 0, 1.0, -1.0)
  g = jnp.broadcast_to(board[None, :, :, None], (2, 8, 8, 2))
  # By hand (replicate padding): interior and corner pixels see 8 neighbours of which 4 differ by 2
  # -> signal² = 1, noise² = 16/8 = 2, log 3; the 24 non-corner edge pixels see 5 differing -> log 3.5.
  expected = (40 * np.log(3.0) + 24 * np.log(3.5)) / 64
  nd = float(alix.normalized_discontinuity(g))
  assert nd == pytest.approx(expected, rel=1e-5)
  assert nd > alix.ND_TARGET
  # Scale-invariant, and the batch mean is taken first: opposite-sign examples cancel to 0.
  assert float(alix.normalized_discontinuity(1e-3 * g)) == pytest.approx(expected, rel=1e-5)
  assert float(alix.normalized_discontinuity(jnp.concatenate([g, -g]))) == pytest.approx(0.0, abs=1e-6)
  # A smooth ramp is far below the target.
  ramp = jnp.broadcast_to((1.0 + 0.01 * jnp.arange(8.0))[None, :, None, None], (1, 8, 8, 1))
  assert float(alix.normalized_discontinuity(ramp)) < 1e-3


def test_learn_shift_is_identity_forward_and_gives_target_minus_nd():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 5, 3))
  np.testing.assert_array_equal(alix.learn_shift(x, jnp.float32(0.5), 0.535, 1e-20), x)
  cot = jax.random.normal(jax.random.PRNGKey(1), x.shape)
  gx, gs = jax.grad(lambda z, s: jnp.sum(alix.learn_shift(z, s, 0.535, 1e-20) * cot), argnums=(0, 1))(
      x, jnp.float32(0.5))
  np.testing.assert_allclose(gx, cot, atol=1e-6)
  assert float(gs) == pytest.approx(0.535 - float(alix.normalized_discontinuity(cot)), rel=1e-5)


def _encoder(architecture="der"):
  return hk.transform(lambda x, t: alix_encoder.ALIXEncoder(alix.ALIXConfig(architecture))(x, t))


@pytest.mark.parametrize("architecture,feature_shape", [("der", (3, 3, 64)), ("nature", (3, 3, 64)),
                                                      ("drqv2", (6, 6, 32))])
def test_one_step_moves_s_towards_target(architecture, feature_shape):
  f = _encoder(architecture)
  size = {"der": 75, "nature": 52, "drqv2": 25}[architecture]
  images = jax.random.randint(jax.random.PRNGKey(0), (4, size, size, 3), 0, 256).astype(jnp.uint8)
  params = f.init(jax.random.PRNGKey(1), images, True)
  assert float(alix_optimizer.alix_shift(params)) == pytest.approx(alix.INITIAL_SHIFT)
  h, w, c = feature_shape
  board = jnp.where((jnp.arange(h)[:, None] + jnp.arange(w)[None, :]) % 2 == 0, 1.0, -1.0)
  cotangents = {"rough": jnp.broadcast_to(board[None, :, :, None], (4, h, w, c)),  # ND = log 3 > target
                "smooth": jnp.ones((4, h, w, c))}  # ND = 0 < target
  optimizer = alix_optimizer.make_alix_optimizer(optax.adam(1e-4))

  @jax.jit
  def new_shift(cot):
    loss = lambda p: jnp.sum(f.apply(p, jax.random.PRNGKey(2), images, True) * cot.reshape(4, -1))
    grads = jax.grad(loss)(params)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    return alix_optimizer.alix_shift(optax.apply_updates(params, updates))

  assert float(new_shift(cotangents["rough"])) == pytest.approx(
      alix.INITIAL_SHIFT + alix_optimizer.SHIFT_LEARNING_RATE, rel=1e-3)
  assert float(new_shift(cotangents["smooth"])) == pytest.approx(
      alix.INITIAL_SHIFT - alix_optimizer.SHIFT_LEARNING_RATE, rel=1e-3)


def test_evaluation_encoder_is_deterministic_and_gives_s_no_gradient():
  f = _encoder("drqv2")
  images = jax.random.randint(jax.random.PRNGKey(0), (2, 33, 33, 3), 0, 256).astype(jnp.uint8)
  params = f.init(jax.random.PRNGKey(1), images, True)
  out = f.apply(params, None, images, False)
  plain = hk.transform(lambda x: hk.Flatten()(jax.nn.relu(
      hk.Conv2D(32, 3, 1, padding="VALID", name="conv_3")(jax.nn.relu(
          hk.Conv2D(32, 3, 1, padding="VALID", name="conv_2")(jax.nn.relu(
              hk.Conv2D(32, 3, 1, padding="VALID", name="conv_1")(jax.nn.relu(
                  hk.Conv2D(32, 3, 2, padding="VALID", name="conv_0")(x / 255.0 - 0.5))))))))))
  plain_params = {k.replace("alix_encoder/", ""): v for k, v in params.items() if "conv" in k}
  np.testing.assert_allclose(out, plain.apply(plain_params, None, images.astype(jnp.float32)), atol=1e-5)
  g = jax.grad(lambda p: jnp.sum(f.apply(p, None, images, False)))(params)
  assert float(alix_optimizer.alix_shift(g)) == 0.0
  train = f.apply(params, jax.random.PRNGKey(3), images, True)
  assert train.shape == out.shape and not np.allclose(train, out)


def test_multi_transform_routes_s_to_its_own_optimizer_and_clips():
  f = _encoder("der")
  images = jnp.zeros((2, 84, 84, 3), jnp.uint8)
  params = f.init(jax.random.PRNGKey(1), images, True)
  labels = alix_optimizer.shift_param_labels(params)
  assert labels["alix_encoder/alix_shift"]["shift"] == "alix"
  assert {v for k, d in labels.items() if "alix_shift" not in k for v in d.values()} == {"default"}
  grads = jax.tree.map(jnp.ones_like, params)
  optimizer = alix_optimizer.make_alix_optimizer(optax.sgd(0.1))
  updates, state = optimizer.update(grads, optimizer.init(params), params)
  # Default params: plain SGD step −0.1·g; S: Adam's first step is −lr·sign(g) = −2e-3.
  np.testing.assert_allclose(updates["alix_encoder/conv_0"]["w"], -0.1, rtol=1e-6)
  assert float(updates["alix_encoder/alix_shift"]["shift"]) == pytest.approx(-2e-3, rel=1e-4)
  # Projection onto [0, S_max]: a huge step up stops at 2, a huge step down at 0.
  for value, grad, expected in ((1.999, -1.0, 2.0), (0.001, 1.0, 0.0)):
    p = dict(params, **{"alix_encoder/alix_shift": {"shift": jnp.float32(value)}})
    g = dict(grads, **{"alix_encoder/alix_shift": {"shift": jnp.float32(grad)}})
    u, _ = optimizer.update(g, optimizer.init(p), p)
    assert float(optax.apply_updates(p, u)["alix_encoder/alix_shift"]["shift"]) == pytest.approx(expected)


def test_deeper_strided_layers_shift_by_the_same_input_distance():
  # DrQ-v2 (strides 2, 1, 1, 1): every layer shifts by S, as the authors' code.
  assert alix_encoder.layer_shift_scales([2, 1, 1, 1]) == (1.0, 1.0, 1.0, 1.0)
  # DER torso (5x5/5 twice): the 3x3 last map shifts by S / 5.
  assert alix_encoder.layer_shift_scales([5, 5]) == pytest.approx((1.0, 0.2))


def test_the_atari_setting_shifts_the_last_map_only_and_ends_in_the_trunk():
  """arXiv 2207.00986 Sec. 5.2 / Table 7: one LIX layer, after the final conv ReLU, then a trunk of 50 features."""
  images = jax.random.randint(jax.random.PRNGKey(0), (2, 21, 21, 4), 0, 256).astype(jnp.uint8)
  without_trunk = dataclasses.replace(alix.ATARI_100K, trunk_features=0)
  maps = hk.transform(lambda x, t: alix_encoder.ALIXEncoder(without_trunk)(x, t))
  params = maps.init(jax.random.PRNGKey(1), images, True)
  assert sorted(k.split("/")[-1] for k in params) == ["alix_shift", "conv_0", "conv_1", "conv_2"]
  assert float(alix_optimizer.alix_shift(params)) == 1.0  # Table 7: initial S 1.0
  plain = maps.apply(params, None, images, False).reshape(2, 6, 6, 32)  # 21 → 10 → 8 → 6 (strides 2, 1, 1)
  rng = jax.random.PRNGKey(3)
  delta = jax.random.uniform(next(hk.PRNGSequence(rng)), (2,), minval=-1.0, maxval=1.0)  # the only draw, S = 1
  trained = maps.apply(params, rng, images, True).reshape(2, 6, 6, 32)
  assert not np.allclose(trained, plain)
  np.testing.assert_allclose(trained, alix.bilinear_shift(plain, delta), atol=1e-5)  # one shift of the plain map
  features = hk.transform(lambda x, t: alix_encoder.ALIXEncoder(alix.ATARI_100K)(x, t))
  params = features.init(jax.random.PRNGKey(1), images, True)
  out = np.asarray(features.apply(params, None, images, False), np.float64)
  assert out.shape == (2, 50) and np.all(np.abs(out) < 1)  # tanh of a LayerNorm at its initial scale and offset
  normalised = np.arctanh(out)
  np.testing.assert_allclose(normalised.mean(-1), 0.0, atol=1e-4)
  np.testing.assert_allclose(normalised.std(-1), 1.0, rtol=1e-3)


def test_bad_config_raises_config_error():
  with pytest.raises(ConfigError):
    alix.ALIXConfig(architecture="resnet")
  with pytest.raises(ConfigError):
    alix.ALIXConfig(initial_shift=3.0)
  with pytest.raises(ConfigError, match="use 'every' or 'last'"):
    alix.ALIXConfig(lix_after="first")


def test_patchify_convolution_matches_xla_convolution():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 23, 21, 3))  # remainders are dropped, as VALID
  w = jax.random.normal(jax.random.PRNGKey(1), (5, 5, 3, 4))
  expected = jax.lax.conv_general_dilated(x, w, (5, 5), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(conv.conv2d_valid(x, w, 5), expected, rtol=1e-4, atol=1e-4)
