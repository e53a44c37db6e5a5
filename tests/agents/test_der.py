"""DER: noisy layers, the dueling C51 head, the categorical double-Q learner with each encoder, a short sync run."""

import itertools
import math

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory import agents, environments
from repertory.agents.der.config import DERConfig
from repertory.environments.specs import make_environment_spec
from repertory.errors import ConfigError
from repertory.networks.noisy import NoisyLinear, factorised_noisy_linear
from repertory.replay.adders import Transition
from repertory.replay.types import ReplayBatch
from legs import one_leg


# ---------------------------------------------------------------------------------------------
# NoisyLinear (Fortunato et al. 2018, arXiv 1706.10295).

def _noisy(noisy):
  return hk.transform(lambda x: NoisyLinear(8, sigma_zero=0.1)(x, noisy))


def test_noisy_linear_sigma_init_and_noise():
  x = jnp.ones((3, 16))
  net = _noisy(True)
  params = net.init(jax.random.PRNGKey(0), x)["noisy_linear"]
  np.testing.assert_allclose(params["w_sigma"], 0.1 / np.sqrt(16))  # σ = σ0/√p
  np.testing.assert_allclose(params["b_sigma"], 0.1 / np.sqrt(16))
  assert np.all(np.abs(params["w_mu"]) <= 1 / np.sqrt(16))  # μ ~ U[−1/√p, 1/√p]
  full = {"noisy_linear": params}
  a = net.apply(full, jax.random.PRNGKey(1), x)
  b = net.apply(full, jax.random.PRNGKey(2), x)
  assert not np.allclose(a, b)  # fresh noise changes the output in training
  np.testing.assert_array_equal(a, net.apply(full, jax.random.PRNGKey(1), x))  # fixed rng: deterministic
  mean = _noisy(False).apply(full, None, x)  # no noise: mean weights only
  np.testing.assert_allclose(mean, x @ params["w_mu"] + params["b_mu"], rtol=1e-6)


def test_factorised_noise_without_forming_the_weights_matches_eq_9_to_11():
  rng = np.random.default_rng(0)
  x, w_mu, w_sigma = rng.normal(size=(3, 5)), rng.normal(size=(5, 4)), rng.uniform(size=(5, 4))
  b_mu, b_sigma, eps_in, eps_out = rng.normal(size=4), rng.uniform(size=4), rng.normal(size=5), rng.normal(size=4)
  expected = x @ (w_mu + w_sigma * np.outer(eps_in, eps_out)) + b_mu + b_sigma * eps_out  # noisy W formed by hand
  np.testing.assert_allclose(factorised_noisy_linear(x, w_mu, w_sigma, b_mu, b_sigma, eps_in, eps_out), expected,
                             rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Networks and learner.

@pytest.fixture(scope="module")
def spec():
  env = environments.make("atari:Pong", seed=0)
  s = make_environment_spec(env)
  env.close()
  return s


def _batch(spec, batch_size=32, seed=0):
  rng = np.random.default_rng(seed)
  obs = rng.integers(0, 255, (batch_size,) + spec.observations.shape, dtype=np.uint8)
  data = Transition(obs, rng.integers(0, spec.actions.num_values, batch_size).astype(np.int32),
                    rng.uniform(-1, 1, batch_size).astype(np.float32), np.full(batch_size, 0.9, np.float32),
                    obs[::-1].copy())
  return ReplayBatch(np.arange(1, batch_size + 1, dtype=np.uint64), np.full(batch_size, 1 / 64),
                     np.full(batch_size, 64), data)


def test_config_defaults_and_bad_encoder():
  c = DERConfig()
  assert (c.n_step, c.discount, c.target_update_period, c.min_replay_size, c.batch_size) == (10, 0.99, 2000, 1600, 32)
  assert (c.learning_rate, c.adam_eps, c.num_atoms, c.v_max, c.noisy_sigma_zero) == (1e-4, 1.5e-4, 51, 10.0, 0.1)
  assert (c.priority_exponent, c.importance_sampling_exponent, c.updates_per_actor_step, c.epsilon_eval) == (0.5, 0.4, 1.0, 0.001)
  with pytest.raises(ConfigError, match="unknown encoder 'resnet'"):
    agents.make_config("der", {"encoder": "resnet"})


def test_c51_head_shapes_and_probabilities(spec):
  builder = agents.make_builder("der", {"batch_size": "4"})
  nets = builder.make_networks(spec)
  obs = np.zeros((4,) + spec.observations.shape, np.uint8)
  params, state = nets.network.init(jax.random.PRNGKey(0), obs, True, True)
  logits, _ = nets.network.apply(params, state, jax.random.PRNGKey(1), obs, False, True)
  assert logits.shape == (4, spec.actions.num_values, 51)
  np.testing.assert_allclose(jax.nn.softmax(logits).sum(-1), 1.0, rtol=1e-5)
  assert nets.atoms.shape == (51,) and float(nets.atoms[0]) == -10.0 and float(nets.atoms[-1]) == 10.0


@pytest.mark.parametrize("encoder", [pytest.param("der", marks=one_leg(2)), pytest.param("alix", marks=one_leg(1)),
                                     pytest.param("alix-atari", marks=one_leg(2)), "hyperbolic"])
def test_one_learner_step_per_encoder(spec, encoder):
  """Every encoder plugs in; for der the loss also falls over a few updates on a fixed batch."""
  builder = agents.make_builder("der", {"encoder": encoder, "learning_rate": "5e-4"})
  log = []
  batch = _batch(spec)
  learner = builder.make_learner(builder.make_networks(spec), spec, itertools.repeat(batch),
                                 lambda k, p: log.append((k, p)), seed=0)
  before = jax.tree.map(np.asarray, learner.get_variables())
  metrics = learner.step()
  assert math.isfinite(float(metrics["loss"])) and learner.steps == 1
  keys, priorities = log[0]
  np.testing.assert_array_equal(keys, batch.keys)
  assert priorities.shape == (32,) and np.all(priorities > 0)  # per-example cross-entropy as priority
  after = learner.get_variables()
  changed = [not np.allclose(a, b) for a, b in zip(jax.tree_util.tree_leaves(before["params"]),
                                                   jax.tree_util.tree_leaves(after["params"]))]
  assert any(changed)
  if encoder == "der":
    losses = [float(metrics["loss"])] + [float(learner.step()["loss"]) for _ in range(11)]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
  if encoder == "alix":
    assert "alix_shift" in metrics and 0.0 <= float(metrics["alix_shift"]) <= 2.0
  if encoder == "alix-atari":  # S starts at 1 px and takes Adam's first step, ±lr, at the paper's lr of 1e-4
    from repertory.networks.alix_optimizer import alix_shift
    assert float(metrics["alix_shift"]) == 1.0
    assert abs(float(alix_shift(after["params"])) - 1.0) == pytest.approx(1e-4, rel=1e-2)
  if encoder == "hyperbolic":  # spectral-norm state is carried and updated by the learner
    assert jax.tree_util.tree_leaves(after["state"])
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree_util.tree_leaves(before["state"]),
                                                      jax.tree_util.tree_leaves(after["state"])))


def test_actors_explore_with_noise_and_evaluate_with_epsilon(spec):
  builder = agents.make_builder("der")
  nets = builder.make_networks(spec)
  learner = builder.make_learner(nets, spec, itertools.repeat(_batch(spec)), None, seed=0)
  policy = builder.make_policy(nets)
  obs = _batch(spec, 1).data.observation[0]
  actor = builder.make_actor(policy, learner, seed=0)
  evaluator = builder.make_actor(policy, learner, seed=0, evaluation=True)
  assert actor._epsilon(0) == 0.0 and evaluator._epsilon(0) == 0.001
  random_first = agents.make_builder("der", {"random_steps": "3"})  # A-LIX's Atari runs: uniform actions first
  actor_first = random_first.make_actor(policy, learner, seed=0)
  assert [actor_first._epsilon(step) for step in range(5)] == [1.0, 1.0, 1.0, 0.0, 0.0]
  assert random_first.make_actor(policy, learner, seed=0, evaluation=True)._epsilon(0) == 0.001
  a1 = [int(builder.make_actor(policy, learner, seed=3).select_action(obs)) for _ in range(2)]
  assert a1[0] == a1[1]  # same seed, same noise: same action
  variables = learner.get_variables()
  observations = np.random.RandomState(0).randint(0, 256, (32,) + spec.observations.shape).astype(np.uint8)
  from repertory.agents.der.networks import q_values

  def q(seed, noisy):
    logits, _ = nets.network.apply(variables["params"], variables["state"], jax.random.PRNGKey(seed), observations,
                                   False, noisy)
    return np.asarray(q_values(logits, nets.atoms))

  assert np.abs(q(1, True) - q(2, True)).max() > 1e-3  # training: fresh noisy weights for every key
  np.testing.assert_array_equal(q(1, False), q(2, False))  # evaluation: the mean weights, whatever the key
  greedy = {tuple(np.asarray(policy.train(variables, jax.random.PRNGKey(k), observations, 0.0))) for k in range(8)}
  assert len(greedy) > 1  # the noise alone (ε = 0) changes the actions taken
  assert len({tuple(np.asarray(policy.evaluate(variables, jax.random.PRNGKey(k), observations, 0.0)))
              for k in range(8)}) == 1
  assert 0 <= int(evaluator.select_action(obs)) < spec.actions.num_values
  hyper = agents.make_builder("der", {"encoder": "hyperbolic"})
  hyper_nets = hyper.make_networks(spec)
  hyper_actor = hyper.make_actor(hyper.make_policy(hyper_nets), learner, seed=0)
  assert hyper_actor._epsilon(0) == 1.0 and hyper_actor._epsilon(10_000) == pytest.approx(0.01)  # no noisy layers
