"""The plasticity interventions inside the IMPALA and SAC learners: injection into IMPALA's heads and into SAC's
actor and critic heads keeps every output bit for bit and the trained-parameter count; shrink-and-perturb gives λθ (σ = 0); ReDo recycles the
units below τ, zeroing their outgoing weights (with a recurrent core: outside the core); diagnostics are selected by name."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learner_helpers import AGENTS, random_batch, run_updates

from repertory import environments
from repertory.agents import make_builder, make_config
from repertory.environments.specs import make_environment_spec
from repertory.errors import ConfigError
from repertory.plasticity import injection

FROZEN = {"learning_rate": "1e-30"}  # below float32 resolution: only the intervention moves the weights


def _close(a, b):
  np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("core", ["lstm", "ppr"])
def test_impala_injection_keeps_every_output_and_trains_only_theta_prime(core):
  states = []
  _, after, *_ = run_updates("impala", steps=3, extra_overrides={"injection_step": "1", "core": core},
                             snapshots=states)
  before = states[0]  # the injection comes before the second step
  assert not injection.is_injected(before.params) and injection.is_injected(after.params)
  assert injection.trained_parameter_count(before.params) == injection.trained_parameter_count(after.params)
  heads = [m for m in before.params if "/head/" in m]
  assert heads and all(np.array_equal(before.params[m]["w"], after.params[m]["w"]) for m in heads)  # θ frozen

  environment = environments.make(AGENTS["impala"][0], seed=0)
  spec = make_environment_spec(environment)
  builder = make_builder("impala", {**AGENTS["impala"][1], "injection_step": "1", "core": core})
  networks = builder.make_networks(spec)
  observations = random_batch(builder.example_item(spec), 4, 2, seed=3).data.observation[:, 0]
  step = jax.jit(lambda p: networks.step(p, observations, networks.initial_state(p, 4), jnp.ones(4, bool))[:2])
  for out, injected_out in zip(step(before.params), step(injection.inject(before.params))):
    np.testing.assert_array_equal(np.asarray(out).view(np.uint32), np.asarray(injected_out).view(np.uint32))


def test_sac_injection_keeps_actor_and_critic_outputs_and_trains_only_theta_prime():
  states = []
  _, after, *_ = run_updates("sac", steps=3, extra_overrides={"injection_step": "1"}, snapshots=states)
  before = states[0]  # the injection comes before the second step
  for field in ("actor_params", "critic_params", "target_critic_params"):
    params_before, params_after = getattr(before, field), getattr(after, field)
    scopes = list(injection.injection_scopes(params_before))
    assert len(scopes) == (1 if field == "actor_params" else 2), scopes
    assert not injection.is_injected(params_before) and injection.is_injected(params_after), field
    assert injection.trained_parameter_count(params_before) == injection.trained_parameter_count(params_after)
  for field in ("actor_params", "critic_params"):  # θ and θ″ frozen since T, θ′ and the hidden layers before trained
    params_before, params_after = getattr(before, field), getattr(after, field)
    scopes = set(injection.injection_scopes(params_before))  # these hold `active`, set by the injection
    for module in set(params_before) - scopes:
      moved = any(not np.array_equal(params_before[module][n], params_after[module][n]) for n in params_before[module])
      parts = [part for part in module.split("/") if part != "~"]  # injectable_head_<x>/<role>/...
      frozen = module.startswith(injection.SCOPE) and parts[1] in (injection.HEAD, injection.INJECTED_COPY)
      assert moved != frozen, (field, module)

  environment = environments.make(AGENTS["sac"][0], seed=0)
  spec = make_environment_spec(environment)
  builder = make_builder("sac", {**AGENTS["sac"][1], "injection_step": "1"})
  networks = builder.make_networks(spec)
  features = jnp.asarray(np.random.default_rng(3).normal(size=(8, 3)), jnp.float32)
  actions = jnp.asarray(np.random.default_rng(4).uniform(-1, 1, size=(8, 1)), jnp.float32)
  actor = jax.jit(lambda p: networks.actor.apply(p, None, features))
  critic = jax.jit(lambda p: networks.critic.apply(p, None, features, actions))
  for apply, params in ((actor, before.actor_params), (critic, before.critic_params),
                        (critic, before.target_critic_params)):
    for out, injected_out in zip(jax.tree.leaves(apply(params)), jax.tree.leaves(apply(injection.inject(params)))):
      np.testing.assert_array_equal(np.asarray(out).view(np.uint32), np.asarray(injected_out).view(np.uint32))


@pytest.mark.parametrize("agent", ["impala", "sac"])
def test_shrink_and_perturb_in_the_actor_critic_learners_halves_the_trained_weights(agent):
  states = []
  overrides = {**FROZEN, "shrink_perturb_period": "2", "shrink_factor": "0.5", "perturb_scale": "0"}
  _, shrunk, *_ = run_updates(agent, steps=3, extra_overrides=overrides, snapshots=states)
  initial = states[1]  # the reset comes before the third step
  _, untouched, *_ = run_updates(agent, steps=3, extra_overrides=FROZEN)
  if agent == "impala":
    pairs = [(shrunk.params, initial.params, untouched.params)]
  else:
    pairs = [(getattr(shrunk, f), getattr(initial, f), getattr(untouched, f))
             for f in ("encoder_params", "critic_params", "actor_params")]
  for reset, start, kept in pairs:
    jax.tree.map(lambda r, s: _close(r, 0.5 * s), reset, start)
    jax.tree.map(_close, kept, start)


@pytest.mark.parametrize("agent, producer, consumer", [
    ("impala", "impala_network/~/torso_mlp/mlp/~/linear_0", "impala_network/~/feed_forward_core/~_forward/linear"),
    ("sac", "q_0/~/linear_0", "q_0/~/linear_1")])
def test_redo_in_the_actor_critic_learners_recycles_units_below_the_threshold(agent, producer, consumer):
  overrides = {**FROZEN, "redo_period": "2", "dormant_threshold": "0.9", **({"core": "none"} if agent == "impala"
                                                                           else {})}
  states = []
  _, recycled, *_ = run_updates(agent, steps=3, extra_overrides=overrides, snapshots=states)
  field = "params" if agent == "impala" else "critic_params"
  before, after = getattr(states[1], field), getattr(recycled, field)
  changed = np.any(np.asarray(after[producer]["w"]) != np.asarray(before[producer]["w"]), axis=0)
  assert changed.any() and not changed.all()
  zero_rows = np.all(np.abs(np.asarray(after[consumer]["w"])) < 1e-20, axis=1)
  np.testing.assert_array_equal(zero_rows, changed)  # incoming re-drawn exactly where outgoing is zero


@pytest.mark.parametrize("core", ["lstm", "gtrxl"])
def test_redo_with_a_recurrent_core_recycles_the_torso_and_leaves_the_core_and_heads(core):
  overrides = {**FROZEN, "redo_period": "2", "dormant_threshold": "0.9", "core": core, "hidden_sizes": "32,32"}
  states = []
  _, recycled, *_ = run_updates("impala", steps=3, extra_overrides=overrides, snapshots=states)
  before, after = states[1].params, recycled.params
  producer, consumer = (f"impala_network/~/torso_mlp/mlp/~/linear_{i}" for i in (0, 1))
  changed = np.any(np.asarray(after[producer]["w"]) != np.asarray(before[producer]["w"]), axis=0)
  assert changed.any() and not changed.all()
  zero_rows = np.all(np.abs(np.asarray(after[consumer]["w"])) < 1e-20, axis=1)
  np.testing.assert_array_equal(zero_rows, changed)  # incoming re-drawn exactly where outgoing is zero
  # the torso's last layer feeds the core, whose layers read [input, hidden state]: neither is touched
  untouched = [m for m in before if m != producer]
  assert any(core_name in m for m in untouched for core_name in ("lstm_core", "gated_transformer_xl"))
  for module in untouched:
    for name, value in before[module].items():
      same = np.isclose(np.asarray(after[module][name]), np.asarray(value), rtol=1e-6, atol=1e-12)
      if module == consumer and name == "w":
        same |= zero_rows[:, None]  # its outgoing rows, zeroed
      assert same.all(), (module, name)


def test_interventions_an_agent_lacks_and_unknown_diagnostics_are_one_line_errors():
  for agent, overrides, message in (("sac", {"injection_step": "10", "hidden_sizes": "64"}, "at least 2 hidden layers"),
                                    ("dqn", {"diagnostics_period": "5", "diagnostics": "srank,curvature"},
                                     "unknown diagnostic 'curvature'")):
    with pytest.raises(ConfigError, match=message) as error:
      make_config(agent, overrides)
    assert "\n" not in str(error.value)


def test_diagnostics_by_name_compute_only_those_and_the_same_values():
  def row(selection):
    learner, *_ = run_updates("dqn", steps=2, extra_overrides={"diagnostics_period": "2", "diagnostics": selection})
    return learner.take_diagnostics()

  everything, chosen = row("all"), row("srank,probe")
  assert set(chosen) == {"learner_steps", "srank", "sv_max", "sv_max_share", "probe_loss"}
  assert any(k.startswith("dormant/") for k in everything) and any(k.startswith("grad_norm/") for k in everything)
  for name in ("srank", "probe_loss"):
    assert chosen[name] == pytest.approx(everything[name], rel=1e-5)
