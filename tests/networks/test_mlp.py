"""`make_mlp`: hk.nets.MLP unchanged without layer norm; LayerNorm before each hidden ReLU with it."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory.agents import make_builder
from repertory import environments
from repertory.environments.specs import make_environment_spec
from repertory.networks.mlp import make_mlp
from repertory.plasticity.activations import record_layer_inputs


def test_without_layer_norm_it_is_haikus_mlp():
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 4))
  ours = hk.without_apply_rng(hk.transform(lambda x: make_mlp((5, 2))(x)))
  theirs = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP((5, 2))(x)))
  params = ours.init(jax.random.PRNGKey(0), x)
  assert jax.tree.structure(params) == jax.tree.structure(theirs.init(jax.random.PRNGKey(0), x))
  np.testing.assert_array_equal(ours.apply(params, x), theirs.apply(params, x))


def test_with_layer_norm_each_hidden_pre_activation_is_normalised_then_rectified():
  x = jax.random.normal(jax.random.PRNGKey(1), (6, 4))
  mlp = hk.without_apply_rng(hk.transform(lambda x: make_mlp((5, 3), layer_norm=True)(x)))
  params = mlp.init(jax.random.PRNGKey(0), x)
  params = dict(params)
  params["mlp/layer_norm_0"] = {"scale": jnp.full((5,), 2.0), "offset": jnp.full((5,), 0.5)}
  first, second = params["mlp/linear_0"], params["mlp/linear_1"]
  h = np.asarray(x @ first["w"] + first["b"])
  normalised = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5)
  expected = np.maximum(2.0 * normalised + 0.5, 0.0) @ np.asarray(second["w"]) + np.asarray(second["b"])
  np.testing.assert_allclose(mlp.apply(params, x), expected, rtol=1e-4, atol=1e-5)
  assert "mlp/layer_norm_1" not in params  # the output layer is not normalised
  _, records = record_layer_inputs(mlp.apply)(params, x)
  assert [r.layer for r in records] == ["mlp/linear_1"]  # a norm's input is no activation


@pytest.mark.parametrize("agent, env", [("dqn", "gym:CartPole-v1"), ("der", "atari:Pong"),
                                        ("impala", "gym:CartPole-v1"), ("sac", "gym:Pendulum-v1")])
def test_every_agent_builds_layer_norms_when_asked(agent, env):
  environment = environments.make(env, seed=0)
  spec = make_environment_spec(environment)
  environment.close()

  def norm_modules(layer_norm):
    builder = make_builder(agent, {"layer_norm": str(layer_norm).lower()})
    networks = builder.make_networks(spec)
    state = builder.make_learner(networks, spec, iter(()), None, seed=0).state()
    names = jax.tree_util.tree_flatten_with_path(state)[0]
    return {jax.tree_util.keystr(path) for path, _ in names if "layer_norm" in jax.tree_util.keystr(path)}

  assert not norm_modules(False)
  assert norm_modules(True)


def test_sparse_layer_kinds_compute_with_their_effective_weights():
  from repertory.networks import sparse
  x = jax.random.normal(jax.random.PRNGKey(1), (6, 4))
  mlp = hk.without_apply_rng(hk.transform(lambda x: make_mlp((5, 3), layer_kind="powerprop")(x)))
  params = mlp.init(jax.random.PRNGKey(0), x)
  assert set(params) == {"mlp/powerprop_linear_0", "mlp/powerprop_linear_1"}
  w = sparse.effective_weights(params)
  first, second = w["mlp/powerprop_linear_0"], w["mlp/powerprop_linear_1"]
  expected = np.maximum(x @ first["w"] + first["b"], 0) @ second["w"] + second["b"]
  np.testing.assert_allclose(mlp.apply(params, x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("agent, fields, dense_layers", [
    ("dqn", ("params",), ()), ("sac", ("critic_params", "actor_params"), ("mean", "log_std")),
    ("impala", ("params",), ("lstm/linear", "policy_head", "value_head")),  # the core and heads stay dense
    ("der", ("params",), ("_hidden", "_output"))])  # sparse convolutions, the noisy head dense
def test_a_topkast_learner_updates_only_the_backward_set_of_each_weight(agent, fields, dense_layers):
  import os
  import sys
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "agents"))
  from learner_helpers import run_updates
  from repertory.networks import sparse
  overrides = {"layer_kind": "topkast", **({"sgd_steps_per_call": "1"} if agent == "dqn" else {})}
  _, initial, *_ = run_updates(agent, steps=0, extra_overrides=overrides)
  _, updated, *_ = run_updates(agent, steps=1, extra_overrides=overrides)  # one update: masks from the initial w
  for field in fields:
    before, after = getattr(initial, field), getattr(updated, field)
    modules = [m for m in before if "/topkast_" in m]
    dense = [m for m in before if "/topkast_" not in m]
    assert modules and all(m.endswith(dense_layers) for m in dense)
    for module in modules:
      w0, w1 = np.asarray(before[module]["w"]), np.asarray(after[module]["w"])
      backward = np.asarray(sparse.topkast_masks(w0)[1]) > 0
      np.testing.assert_array_equal(w1[~backward], w0[~backward])  # no gradient, no penalty outside B
      assert np.any(w1[backward] != w0[backward])
