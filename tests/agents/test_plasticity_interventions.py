"""Plasticity injection inside the DQN and DER learners: at the configured update, outputs kept bit for bit,
θ and θ″ frozen afterwards, θ′ and the torso trained; impossible settings are one-line errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learner_helpers import AGENTS, random_batch, run_updates

from repertory import environments
from repertory.agents import make_builder, make_config
from repertory.environments.specs import make_environment_spec
from repertory.errors import ConfigError
from repertory.launch.experiment import ExperimentConfig
from repertory.plasticity import injection
from repertory.plasticity.config import PlasticityConfig
from legs import one_leg


def _modules(params, part):
  return {m: v for m, v in params.items() if m.startswith(f"injectable_head/{part}")}


def _adam(opt_state):
  import optax
  return next(s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
              if isinstance(s, optax.ScaleByAdamState))


def _same(a, b):
  return all(np.array_equal(a[m][n], b[m][n]) for m in a for n in a[m])


@pytest.mark.parametrize("agent", ["dqn", pytest.param("der", marks=one_leg(2))])
def test_injection_in_the_learner_keeps_outputs_and_trains_only_theta_prime(agent):
  steps_per_call = int(AGENTS[agent][1].get("sgd_steps_per_call", 1))
  overrides = {"injection_step": str(steps_per_call)}  # injected before the second learner step
  states = []
  learner, after, *_ = run_updates(agent, steps=3, extra_overrides=overrides, snapshots=states)
  before = states[0]
  params_before, params_after = before.params, after.params
  assert not injection.is_injected(params_before) and injection.is_injected(params_after)
  assert injection.trained_parameter_count(params_before) == injection.trained_parameter_count(params_after)
  assert _same(_modules(params_before, "head"), _modules(params_after, "head"))  # θ frozen since T
  copies = _modules(params_after, "injected_copy")
  assert copies and _same({m.replace("injected_copy", "injected_head"): v for m, v in copies.items()},
                          _modules(params_before, "injected_head"))  # θ″ = θ′ at T, frozen since
  assert not _same(_modules(params_before, "injected_head"), _modules(params_after, "injected_head"))  # θ′ learns
  torso = {m: v for m, v in params_after.items() if not m.startswith("injectable_head")}
  assert not _same({m: params_before[m] for m in torso}, torso)

  # The outputs the injection sees: the network at T and the injected one give the same bits.
  env_name, agent_overrides = AGENTS[agent]
  environment = environments.make(env_name, seed=0)
  spec = make_environment_spec(environment)
  environment.close()
  builder = make_builder(agent, {**agent_overrides, **overrides})
  networks = builder.make_networks(spec)
  observations = random_batch(builder.example_item(spec), 4, 2, seed=7).data.observation
  if agent == "dqn":
    apply = jax.jit(lambda p: networks.q_network.apply(p, observations))
  else:
    apply = jax.jit(lambda p: networks.network.apply(p, before.net_state, jax.random.PRNGKey(5), observations,
                                                     True, True)[0])  # training mode: noisy heads
  out, injected_out = apply(params_before), apply(injection.inject(params_before))
  np.testing.assert_array_equal(np.asarray(out).view(np.uint32), np.asarray(injected_out).view(np.uint32))
  assert jnp.all(jnp.isfinite(out))


def test_injection_settings_that_cannot_work_are_one_line_errors():
  with pytest.raises(ConfigError, match="injection_step"):
    make_config("dqn", {"injection_step": "-1"})
  with pytest.raises(ConfigError, match="injection_step is not available for PlasticityConfig"):
    PlasticityConfig(injection_step=10)  # a config whose learner carries out none: refused, never silently ignored
  with pytest.raises(ConfigError, match="hyperbolic"):
    builder = make_builder("der", {"injection_step": "10", "encoder": "hyperbolic"})
    environment = environments.make("atari:Pong", seed=0)
    builder.make_networks(make_environment_spec(environment))
  experiment = ExperimentConfig(agent="dqn", env="gym:CartPole-v1", run_dir="/tmp/unused", max_actor_steps=3000,
                                agent_overrides=(("injection_step", "5000"),))
  with pytest.raises(ConfigError, match="past this run's budget") as error:
    experiment.validate()
  assert "\n" not in str(error.value)


def test_shrink_and_perturb_resets_every_period_to_lambda_theta_plus_sigma_fresh():
  # A learning rate of 1e-30 moves no weight (below float32 resolution; biases by ~1e-30): the parameters
  # change only by the reset. dqn takes 2 updates per learner step.
  frozen = {"learning_rate": "1e-30", "shrink_perturb_period": "4", "shrink_factor": "0.5"}
  states = []
  _, shrunk, *_ = run_updates("dqn", steps=3, extra_overrides={**frozen, "perturb_scale": "0"}, snapshots=states)
  initial = states[1]  # after 4 updates; the reset comes before the third step
  _, perturbed, *_ = run_updates("dqn", steps=3, extra_overrides={**frozen, "perturb_scale": "0.1"})
  _, untouched, *_ = run_updates("dqn", steps=3, extra_overrides={"learning_rate": "1e-30"})
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)  # noqa: E731
  jax.tree.map(close, untouched.params, initial.params)  # no reset, no change
  jax.tree.map(lambda s, p: close(s, 0.5 * p), shrunk.params, initial.params)
  fresh = jax.tree.map(lambda a, p: (a - 0.5 * p) / 0.1, perturbed.params, initial.params)
  for module, leaves in fresh.items():
    np.testing.assert_allclose(leaves["b"], 0.0, atol=1e-9)  # a fresh initialisation has zero biases
    w, w0 = np.asarray(leaves["w"]), np.asarray(initial.params[module]["w"])
    assert not np.allclose(w, w0)  # drawn anew, not the first initialisation
    assert 0.5 < np.std(w) / np.std(w0) < 2.0  # from the same initialiser
  with pytest.raises(ConfigError, match="shrink_factor"):
    make_config("dqn", {"shrink_perturb_period": "10", "shrink_factor": "1.5"})
  with pytest.raises(ConfigError, match="shrink_perturb_period is not available"):
    PlasticityConfig(shrink_perturb_period=10)


def test_redo_in_the_learner_recycles_units_below_the_threshold_on_a_replay_batch():
  # τ = 0.9 marks every below-average unit; a learning rate of 1e-30 leaves only the reset to change weights.
  overrides = {"learning_rate": "1e-30", "redo_period": "4", "dormant_threshold": "0.9"}
  states = []
  _, recycled, *_ = run_updates("dqn", steps=3, extra_overrides=overrides, snapshots=states)
  initial = states[1]
  first = "mlp_torso/mlp/~/linear_0"  # the torso's layer; both dueling streams read its activation
  changed_columns = np.any(np.asarray(recycled.params[first]["w"]) != np.asarray(initial.params[first]["w"]), axis=0)
  assert changed_columns.any() and not changed_columns.all()
  for stream in ("value", "advantage"):
    # zero up to the ~1e-30 steps the two updates after the reset take
    zero_rows = np.all(np.abs(np.asarray(recycled.params[f"dueling_q_head/{stream}/~/linear_0"]["w"])) < 1e-20, axis=1)
    np.testing.assert_array_equal(zero_rows, changed_columns)  # incoming re-drawn exactly when outgoing is 0
  # The recycled weights' Adam moments were zeroed at the reset (the authors' code): against a run that keeps them,
  # μ differs by b1² · μ_before (two updates since) exactly where ReDo changed a weight, and nowhere else.
  _, kept, *_ = run_updates("dqn", steps=3, extra_overrides={**overrides, "redo_reset_moments": "false"})
  mu = lambda state: _adam(state.opt_state).mu  # noqa: E731
  changed = jax.tree.map(lambda a, b: np.asarray(a) != np.asarray(b), recycled.params, initial.params)
  for name in (first, "dueling_q_head/value/~/linear_0"):
    mask = changed[name]["w"]  # its own recycled units' columns, and for the head the torso units' rows
    if name != first:
      mask = mask | changed_columns[:, None]
    difference = np.asarray(mu(kept)[name]["w"]) - np.asarray(mu(recycled)[name]["w"])
    np.testing.assert_allclose(difference[mask], 0.81 * np.asarray(mu(initial)[name]["w"])[mask], rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(difference[~mask], 0.0, atol=1e-9)
  with pytest.raises(ConfigError, match="choose one"):
    make_config("dqn", {"redo_period": "10", "shrink_perturb_period": "10"})
  with pytest.raises(ConfigError, match="redo_period"):
    make_config("sac", {"redo_period": "-1"})


@pytest.mark.parametrize("make, message", [(lambda: make_config("dqn", {"layer_kind": "lottery"}), "unknown layer_kind"),
                                           (lambda: PlasticityConfig(layer_kind="topkast"), "not available")])
def test_layer_kinds_that_do_not_exist_or_are_not_wired_are_one_line_errors(make, message):
  with pytest.raises(ConfigError, match=message) as error:
    make()
  assert "\n" not in str(error.value)


def test_powerprop_layers_build_for_every_agent_and_only_on_encoders_that_take_them():
  for agent, env, layer in (("impala", "gym:CartPole-v1", "powerprop_linear_"), ("sac", "gym:Pendulum-v1", "powerprop_linear_"),
                            ("der", "atari:Pong", "der_torso/powerprop_conv_"),
                            ("dqn", "atari:Pong", "nature_cnn/powerprop_linear_0")):
    environment = environments.make(env, seed=0)
    spec = make_environment_spec(environment)
    builder = make_builder(agent, {"layer_kind": "powerprop"})
    state = builder.make_learner(builder.make_networks(spec), spec, iter(()), None, seed=0).state()
    assert any(layer in jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]), agent
  with pytest.raises(ConfigError, match="not available for the alix encoder") as error:
    make_builder("der", {"layer_kind": "powerprop", "encoder": "alix"}).make_networks(
        make_environment_spec(environments.make("atari:Pong", seed=0)))
  assert "\n" not in str(error.value)


@pytest.mark.parametrize("agent, kind", [("dqn", "powerprop"), ("impala", "dense"), ("sac", "powerprop"),
                                         ("der", "powerprop")])  # DER: the torso's v and the noisy head's w_mu
def test_evaluation_at_a_target_sparsity_prunes_every_weight_tensor_by_magnitude(agent, kind):
  from repertory.networks.sparse import kept_count
  learner, _, _, _ = run_updates(agent, steps=1, extra_overrides={"layer_kind": kind, "eval_sparsity": "0.75"})
  environment = environments.make(AGENTS[agent][0], seed=0)
  spec = make_environment_spec(environment)
  environment.close()
  builder = make_builder(agent, {**AGENTS[agent][1], "layer_kind": kind, "eval_sparsity": "0.75"})
  policy = builder.make_policy(builder.make_networks(spec))
  dense = jax.tree_util.tree_flatten_with_path(jax.device_get(learner.get_variables()))[0]
  evaluator = builder.make_actor(policy, learner, 0, evaluation=True)
  first = evaluator._client.params
  evaluator._client.maybe_update()
  assert evaluator._client.params is first  # unchanged learner parameters are not pruned again
  evaluated = jax.tree_util.tree_leaves(jax.device_get(first))
  trained = jax.tree_util.tree_leaves(jax.device_get(builder.make_actor(policy, learner, 0)._client.params))
  weights = 0
  for (path, full), pruned, acting in zip(dense, evaluated, trained):
    np.testing.assert_array_equal(acting, full)  # training actors act with the dense parameters
    if getattr(path[-1], "key", None) not in ("w", "w_mu"):
      np.testing.assert_array_equal(pruned, full)  # biases (and other leaves) are kept
      continue
    weights += 1
    kept = np.abs(full) >= np.sort(np.abs(full), axis=None)[-kept_count(0.25, full.size)]
    assert np.count_nonzero(pruned) == kept_count(0.25, full.size)  # exactly 25% of the entries left
    np.testing.assert_array_equal(pruned, np.where(kept, full, 0))  # and they are the largest in magnitude
  assert weights >= 2


def test_an_evaluation_sparsity_outside_the_unit_interval_is_one_line():
  for agent in ("dqn", "der"):
    for value in ("1.0", "-0.1", "1.5"):
      with pytest.raises(ConfigError, match=r"eval_sparsity=.* is outside \[0, 1\)") as error:
        make_config(agent, {"eval_sparsity": value})
      assert "\n" not in str(error.value)
