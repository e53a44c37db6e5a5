"""SAC: tanh-Gaussian log-prob, temperature, Polyak targets, GPL wiring, builder checks, pixels, learning."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dm_env import specs as dm_specs

from repertory import agents, environments
from repertory.agents.sac import losses as sac_losses
from repertory.agents.sac.builder import SACBuilder
from repertory.agents.sac.config import SACConfig
from repertory.agents.sac.networks import tanh_gaussian
from repertory.environments.specs import EnvironmentSpec, make_environment_spec
from repertory.errors import ConfigError
from repertory.replay.adders import Transition
from repertory.replay.types import ReplayBatch
from legs import one_leg

SMALL = dict(hidden_sizes=(32, 32), batch_size=16, min_replay_size=16)


def _spec(observation_shape=(3,), observation_dtype=np.float32, low=-2.0, high=2.0, action_dim=1):
  observations = dm_specs.Array(observation_shape, observation_dtype)
  actions = dm_specs.BoundedArray((action_dim,), np.float32, low, high)
  return EnvironmentSpec(observations, actions, dm_specs.Array((), np.float32), dm_specs.Array((), np.float32))


def _batches(spec, n, batch_size, seed=0):
  rng = np.random.default_rng(seed)
  shape = spec.observations.shape
  out = []
  for _ in range(n):
    if spec.observations.dtype == np.uint8:
      obs = rng.integers(0, 256, (batch_size,) + shape).astype(np.uint8)
      next_obs = rng.integers(0, 256, (batch_size,) + shape).astype(np.uint8)
    else:
      obs = rng.normal(size=(batch_size,) + shape).astype(np.float32)
      next_obs = obs + 0.1
    action = rng.uniform(spec.actions.minimum, spec.actions.maximum, (batch_size,) + spec.actions.shape)
    data = Transition(obs, action.astype(np.float32), rng.normal(size=batch_size).astype(np.float32),
                      np.full(batch_size, 0.99, np.float32), next_obs)
    out.append(ReplayBatch(np.arange(batch_size, dtype=np.uint64), np.full(batch_size, 1.0 / 64),
                           np.full(batch_size, 64), data))
  return out


def _learner(config, spec, batches, seed=0):
  builder = SACBuilder(config)
  return builder.make_learner(builder.make_networks(spec), spec, iter(batches), None, seed)


# ---------------------------------------------------------------------------------------------------
# The tanh-Gaussian policy.


def _numerical_log_density(y, mean, std, h=1e-6):
  """log d/dy P(tanh(U) <= y), U ~ N(mean, std): central difference of the CDF Φ((atanh y − μ)/σ)."""
  cdf = lambda v: 0.5 * (1.0 + math.erf((math.atanh(v) - mean) / (std * math.sqrt(2.0))))
  return math.log((cdf(y + h) - cdf(y - h)) / (2 * h))


def test_tanh_gaussian_log_prob_matches_numerical_density():
  means, log_stds = np.array([0.3, -1.2]), np.array([-0.2, 0.4])
  dist = tanh_gaussian(jnp.asarray(means, jnp.float32), jnp.asarray(log_stds, jnp.float32))
  for y in ([0.5, -0.7], [-0.95, 0.1], [0.0, 0.9]):
    expected = sum(_numerical_log_density(v, m, math.exp(s)) for v, m, s in zip(y, means, log_stds))
    np.testing.assert_allclose(float(dist.log_prob(jnp.asarray(y, jnp.float32))), expected, rtol=2e-4, atol=2e-4)


def test_sample_and_log_prob_agree_with_log_prob():
  dist = tanh_gaussian(jnp.zeros((64, 3)), jnp.full((64, 3), -0.5))
  samples, log_prob = dist.sample_and_log_prob(seed=jax.random.PRNGKey(0))
  assert samples.shape == (64, 3) and log_prob.shape == (64,)
  assert float(jnp.max(jnp.abs(samples))) < 1.0
  np.testing.assert_allclose(log_prob, dist.log_prob(samples), rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------------------------------------------
# Temperature, Polyak targets, GPL wiring.


def test_temperature_gradient_raises_alpha_when_entropy_below_target():
  log_prob = jnp.full((8,), 1.0)  # entropy estimate −1 < target 0
  grad = jax.grad(sac_losses.temperature_loss)(jnp.float32(0.0), log_prob, 0.0)
  assert float(grad) < 0  # descent raises log α
  grad = jax.grad(sac_losses.temperature_loss)(jnp.float32(0.0), log_prob, -5.0)  # entropy −1 > −5
  assert float(grad) > 0


@pytest.fixture(scope="module")
def twin_learners():
  """A clipped and a GPL learner (β frozen at 0.5 by a zero learning rate) on the same 3 batches, with
  τ = 0.1 and a target entropy of +2 per dimension (unreachable: a density on [−1, 1] has entropy <= log 2).
  Returns, per learner, the target-critic params before each step and the state after it."""
  spec = _spec()
  batches = _batches(spec, 3, 16)
  common = dict(tau=0.1, target_entropy_per_action_dim=2.0, **SMALL)
  runs = {}
  for penalty, extra in (("clipped", {}), ("gpl", {"beta_learning_rate": 0.0})):
    learner = _learner(SACConfig(penalty=penalty, **common, **extra), spec, batches)
    history = []
    for _ in range(3):
      before = learner.state().target_critic_params
      learner.step()
      history.append((before, learner.state()))
    runs[penalty] = (learner, history)
  return runs


def test_polyak_update_after_each_step(twin_learners):
  learner, history = twin_learners["clipped"]
  for before, after in history:
    for online, old, new in zip(jax.tree_util.tree_leaves(after.critic_params), jax.tree_util.tree_leaves(before),
                                jax.tree_util.tree_leaves(after.target_critic_params)):
      np.testing.assert_allclose(new, 0.1 * online + 0.9 * old, rtol=1e-5, atol=1e-7)
  assert learner.steps == 3


def test_learner_temperature_rises_while_entropy_is_below_target(twin_learners):
  _, history = twin_learners["clipped"]
  alphas = [float(jnp.exp(after.log_alpha)) for _, after in history]
  assert 1.0 < alphas[0] < alphas[1] < alphas[2]


def test_gpl_target_with_half_beta_and_two_critics_is_clipped_double_q():
  rng = np.random.default_rng(0)
  q = jnp.asarray(rng.normal(size=(2, 32)), jnp.float32)
  r, d, logp = (jnp.asarray(rng.normal(size=32), jnp.float32) for _ in range(3))
  gpl = sac_losses.critic_target(q, r, d, logp, jnp.float32(0.2), jnp.float32(0.5), "gpl")
  clipped = sac_losses.critic_target(q, r, d, logp, jnp.float32(0.2), jnp.float32(0.5), "clipped")
  np.testing.assert_allclose(gpl, clipped, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(clipped, r + d * (jnp.min(q, 0) - 0.2 * logp), rtol=1e-6)
  np.testing.assert_allclose(sac_losses.penalised_value(q, "gpl", 0.5), jnp.min(q, 0), rtol=1e-6, atol=1e-6)


def test_gpl_learner_with_fixed_half_beta_matches_clipped_learner(twin_learners):
  a, b = twin_learners["clipped"][0].state(), twin_learners["gpl"][0].state()
  assert float(b.beta) == 0.5
  for x, y in zip(jax.tree_util.tree_leaves((a.critic_params, a.actor_params, a.target_critic_params, a.log_alpha)),
                  jax.tree_util.tree_leaves((b.critic_params, b.actor_params, b.target_critic_params, b.log_alpha))):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_gpl_beta_follows_dual_td_sign():
  spec = _spec()
  learner = _learner(SACConfig(penalty="gpl", beta_learning_rate=1e-2, **SMALL), spec, _batches(spec, 1, 16))
  metrics = learner.step()
  gap, beta = float(metrics["td_gap"]), float(learner.state().beta)
  assert (beta < 0.5) == (gap > 0) and beta != 0.5


# ---------------------------------------------------------------------------------------------------
# Configuration and environments.


def test_discrete_environment_is_a_one_line_config_error():
  spec = make_environment_spec(environments.make("gym:CartPole-v1"))
  with pytest.raises(ConfigError) as error:
    SACBuilder().check_environment(spec)
  assert str(error.value) == "sac needs continuous actions; use dqn or der for discrete ones"
  assert "\n" not in str(error.value)


def test_unknown_penalty_and_registry():
  with pytest.raises(ConfigError, match="unknown sac penalty 'optimistic'"):
    agents.make_config("sac", {"penalty": "optimistic"})
  builder = agents.make_builder("sac", {"penalty": "gpl", "updates_per_actor_step": "2", "num_critics": "3"})
  assert builder.config.penalty == "gpl" and builder.config.updates_per_actor_step == 2.0
  assert builder.config.num_critics == 3
  assert builder.table_config().samples_per_insert == 2.0 * builder.config.batch_size
  defaults = SACConfig()
  assert (defaults.learning_rate, defaults.batch_size, defaults.discount, defaults.hidden_sizes, defaults.tau) == (
      3e-4, 256, 0.99, (256, 256), 0.005)


def test_actor_rescales_to_action_bounds_and_evaluates_deterministically():
  spec = _spec(low=-1.0, high=3.0, action_dim=2)  # asymmetric: a missing offset or scale shows
  builder = SACBuilder(SACConfig(**SMALL))
  networks = builder.make_networks(spec)
  learner = builder.make_learner(networks, spec, iter(()), None, 0)
  policy = builder.make_policy(networks)
  actor = builder.make_actor(policy, learner, seed=0)
  random_action = actor.select_action(np.zeros(3, np.float32))  # warm-up: uniform random
  assert random_action.shape == (2,) and np.all((random_action >= -1.0) & (random_action <= 3.0))
  evaluator = builder.make_actor(policy, learner, seed=1, evaluation=True)
  obs = np.random.default_rng(0).normal(0.0, 3.0, (64, 3)).astype(np.float32)
  a, b = evaluator.select_actions(obs), evaluator.select_actions(obs)
  np.testing.assert_array_equal(a, b)
  variables = learner.get_variables()
  mean, _ = networks.actor.apply(variables["actor"], None, networks.encoder.apply(variables["encoder"], None, obs, False))
  expected = -1.0 + (np.tanh(np.asarray(mean)) + 1.0) / 2.0 * 4.0  # [−1, 1] → [low, high] by hand
  np.testing.assert_allclose(a, expected, rtol=1e-5, atol=1e-5)
  assert a.shape == (64, 2) and np.ptp(a, axis=0).min() > 0.05  # the deterministic action depends on the state
  sampled = np.asarray(policy(variables, jax.random.PRNGKey(2), obs, False))  # training: tanh-Gaussian samples
  assert np.all((sampled >= -1.0) & (sampled <= 3.0)) and np.abs(sampled - a).max() > 0.05


@pytest.mark.parametrize("encoder", ["alix", "drq"])
def test_pixel_learner_trains_encoder_and_alix_shift(encoder):
  spec = _spec(observation_shape=(24, 24, 3), observation_dtype=np.uint8, low=-1.0, high=1.0, action_dim=2)
  spec = dataclasses.replace(spec, observations=dm_specs.BoundedArray((24, 24, 3), np.uint8, 0, 255))
  config = SACConfig(encoder=encoder, hidden_sizes=(16,), feature_dim=8, batch_size=4, min_replay_size=4,
                     random_shift_pad=2)
  learner = _learner(config, spec, _batches(spec, 2, 4))
  before = learner.state()
  metrics = learner.step()
  after = learner.state()
  from repertory.networks.alix_optimizer import alix_shift
  changed = [not np.allclose(x, y) for x, y in zip(jax.tree_util.tree_leaves(before.encoder_params),
                                                    jax.tree_util.tree_leaves(after.encoder_params))]
  assert sum(changed) >= 2  # conv weights move (critic loss)
  if encoder == "alix":
    assert float(alix_shift(after.encoder_params)) != float(alix_shift(before.encoder_params))
    assert "alix_shift" in metrics
  else:  # the plain DrQ-v2 conv has no shift parameter
    assert alix_shift(after.encoder_params) is None and "alix_shift" not in metrics
  assert np.isfinite(float(metrics["loss"]))


# ---------------------------------------------------------------------------------------------------
# Learning.


@pytest.mark.slow
@one_leg(1)
def test_sac_sync_learns_pendulum(tmp_path):
  """SAC (small nets) with the `sync` launcher swings Pendulum up: final eval return > −400 at 10k steps."""
  from repertory.launch.experiment import ExperimentConfig
  from repertory.launch.sync import run_sync
  experiment = ExperimentConfig(
      agent="sac", env="gym:Pendulum-v1", run_dir=str(tmp_path), seed=0, max_actor_steps=10_000, eval_every=5_000,
      eval_episodes=5, agent_overrides=(("hidden_sizes", "64,64"), ("batch_size", "128")), progress=False).validate()
  summary = run_sync(experiment)
  assert summary["final_evaluation_return"] > -400, summary
