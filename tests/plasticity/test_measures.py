"""Plasticity measures and probes against hand computations and properties a broken one would violate."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory.networks import heads, torsos
from repertory.networks.conv import conv2d_valid
from repertory.plasticity import measures, probes
from repertory.plasticity.activations import record_layer_inputs


def _matrix_with_singular_values(values, rows=12, cols=8, seed=0):
  rng = np.random.RandomState(seed)
  u, _ = np.linalg.qr(rng.randn(rows, rows))
  v, _ = np.linalg.qr(rng.randn(cols, cols))
  s = np.zeros((rows, cols))
  s[np.arange(len(values)), np.arange(len(values))] = values
  return jnp.asarray(u @ s @ v.T, jnp.float32)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_a_matrix_with_k_equal_singular_values_has_srank_k(k):
  assert int(measures.srank(_matrix_with_singular_values([2.0] * k))) == k


def test_srank_counts_singular_values_until_one_minus_delta_of_the_sum():
  features = _matrix_with_singular_values([1.0, 1.0, 0.5])  # cumulative shares 0.4, 0.8, 1.0
  assert int(measures.srank(features, delta=0.25)) == 2
  assert int(measures.srank(features, delta=0.01)) == 3
  assert int(measures.srank(_matrix_with_singular_values([1.0, 1e-4]))) == 1  # 1/(1+1e-4) ≥ 0.99
  assert int(measures.srank(jnp.zeros((4, 3)))) == 0


def test_spectrum_summary_reports_the_top_singular_value_and_its_share():
  summary = measures.spectrum_summary(_matrix_with_singular_values([3.0, 1.0]))
  np.testing.assert_allclose([summary["sv_max"], summary["sv_max_share"]], [3.0, 0.75], rtol=1e-5)


def test_dormant_fraction_of_a_hand_built_relu_layer():
  # Unit 0 has a large negative bias (always off), unit 3 a tiny output: s = [0, 1.33, 2.66, 0.0133].
  inputs = jnp.asarray([[1.0], [2.0], [3.0]])
  w = jnp.asarray([[1.0, 1.0, 2.0, 0.01]])
  b = jnp.asarray([-10.0, 0.0, 0.0, 0.0])
  activation = jax.nn.relu(inputs @ w + b)
  np.testing.assert_allclose(measures.unit_scores(activation), [0.0, 4 / 3.01, 8 / 3.01, 0.04 / 3.01], rtol=1e-5)
  assert float(measures.dormant_fraction(activation, 0.025)) == 0.5
  assert float(measures.dormant_fraction(activation, 0.0)) == 0.25
  assert float(measures.dormant_fraction(jnp.zeros((5, 4)))) == 1.0


def test_dormant_units_of_a_convolution_are_its_channels():
  activation = jnp.ones((2, 3, 3, 4)).at[..., 1].set(0.0)
  assert float(measures.dormant_fraction(activation)) == 0.25


def test_module_norms_group_parameters_by_their_module():
  params = {"torso/~/linear": {"w": jnp.full((2, 2), 1.0), "b": jnp.zeros(2)}, "head": {"w": jnp.asarray([3.0, 4.0])}}
  norms = measures.module_norms({"critic": params})
  np.testing.assert_allclose(norms["critic/torso/linear"], 2.0)
  np.testing.assert_allclose(norms["critic/head"], 5.0)


def _dqn_like(observations):
  return heads.DuelingQHead(3, (8,))(torsos.MLPTorso((16, 16))(observations))


def test_recorded_layer_inputs_are_the_hidden_activations_once_each():
  network = hk.without_apply_rng(hk.transform(_dqn_like))
  observations = jax.random.normal(jax.random.PRNGKey(1), (6, 5))
  params = network.init(jax.random.PRNGKey(0), observations)
  names = []

  def traced(params, observations):  # under jit, as the learners call it
    outputs, records = record_layer_inputs(network.apply)(params, observations)
    names.extend(r.layer for r in records)
    return outputs, [r.activation for r in records]

  outputs, activations = jax.jit(traced)(params, observations)
  np.testing.assert_allclose(outputs, network.apply(params, observations), rtol=1e-6)
  assert names == [
      "mlp_torso/mlp/linear_1",  # the first layer reads the observations: not an activation
      "dueling_q_head/value/linear_0",  # the torso's features, read by both streams, recorded once
      "dueling_q_head/value/linear_1", "dueling_q_head/advantage/linear_1"]
  torso = params["mlp_torso/mlp/~/linear_0"]
  np.testing.assert_allclose(activations[0], jax.nn.relu(observations @ torso["w"] + torso["b"]), rtol=1e-6)


def test_an_image_torso_that_scales_its_input_before_its_first_layer_records_only_hidden_activations():
  network = hk.without_apply_rng(hk.transform(lambda images: torsos.DataEfficientCNN()(images)))
  images = jax.random.randint(jax.random.PRNGKey(1), (2, 30, 30, 2), 0, 256).astype(jnp.uint8)
  params = network.init(jax.random.PRNGKey(0), images)
  _, records = record_layer_inputs(network.apply)(params, images)
  assert [(r.layer, r.activation.shape) for r in records] == [("der_torso/conv_1", (2, 6, 6, 32))]
  conv = params["der_torso/conv_0"]
  expected = jax.nn.relu(conv2d_valid(images.astype(jnp.float32) / 255.0, conv["w"], 5) + conv["b"])
  np.testing.assert_allclose(records[0].activation, expected, rtol=1e-5, atol=1e-6)


def test_the_plasticity_probe_of_a_network_with_all_zero_features_is_worse_than_a_fresh_one():
  network = hk.without_apply_rng(hk.transform(_dqn_like))
  observations = jax.random.normal(jax.random.PRNGKey(1), (32, 5))
  fresh = network.init(jax.random.PRNGKey(0), observations)
  dead = {name: (jax.tree.map(jnp.zeros_like, p) if name.startswith("mlp_torso") else p) for name, p in fresh.items()}
  probe = lambda params: probes.plasticity_probe(lambda p: network.apply(p, observations), params,
                                                 jax.random.PRNGKey(2), steps=200, learning_rate=1e-2)
  fresh_loss, dead_loss = float(probe(fresh)), float(probe(dead))
  # With zero features the outputs are the same for every example, so the best the dead network can reach is
  # the targets' variance over the batch (about 1, the noise's).
  targets = probes.random_targets(network.apply(dead, observations), jax.random.PRNGKey(2))
  floor = float(jnp.mean(jnp.var(targets, axis=0)))
  assert 0.5 < floor and dead_loss > floor - 1e-4
  assert fresh_loss < 0.5 * dead_loss


def test_the_plasticity_probe_leaves_the_parameters_untouched():
  network = hk.without_apply_rng(hk.transform(_dqn_like))
  observations = jnp.ones((4, 5))
  params = network.init(jax.random.PRNGKey(0), observations)
  copy = jax.tree.map(jnp.array, params)
  probes.plasticity_probe(lambda p: network.apply(p, observations), params, jax.random.PRNGKey(2), steps=3)
  jax.tree.map(np.testing.assert_array_equal, params, copy)


def test_a_linear_probe_predicts_linear_targets_and_not_independent_noise():
  rng = np.random.RandomState(0)
  features = jnp.asarray(rng.randn(200, 10), jnp.float32)
  linear_targets = features @ jnp.asarray(rng.randn(10, 2), jnp.float32)
  assert float(probes.linear_probe_r2(features, linear_targets)) > 0.99
  assert float(probes.linear_probe_r2(features, jnp.asarray(rng.randn(200, 2), jnp.float32))) < 0.1
