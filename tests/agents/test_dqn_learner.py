"""DQN learner mechanics: fused updates equal single updates; priorities go back for every sampled key."""

import jax
import numpy as np

from repertory import environments
from repertory.agents.dqn.builder import DQNBuilder
from repertory.agents.dqn.config import DQNConfig
from repertory.environments.specs import make_environment_spec
from repertory.replay.adders import Transition
from repertory.replay.types import ReplayBatch


def _batches(n, batch_size=8, seed=0):
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    obs = rng.normal(size=(batch_size, 4)).astype(np.float32)
    data = Transition(obs, rng.integers(0, 2, batch_size).astype(np.int32), rng.normal(size=batch_size).astype(np.float32),
                      np.full(batch_size, 0.9, np.float32), obs + 0.1)
    out.append(ReplayBatch(np.arange(i * batch_size, (i + 1) * batch_size, dtype=np.uint64) + 1,
                           np.full(batch_size, 1 / 64), np.full(batch_size, 64), data))
  return out


def _learner(config, batches, priorities_log):
  builder = DQNBuilder(config)
  spec = make_environment_spec(environments.make("gym:CartPole-v1"))
  return builder.make_learner(builder.make_networks(spec), spec, iter(batches),
                              lambda k, p: priorities_log.append((k, p)), seed=0)


def test_fused_updates_equal_one_at_a_time():
  batches = _batches(4)
  log_one, log_fused = [], []
  one = _learner(DQNConfig(batch_size=8, target_update_period=2), batches, log_one)
  for _ in range(4):
    one.step()
  fused = _learner(DQNConfig(batch_size=8, target_update_period=2, sgd_steps_per_call=2), batches, log_fused)
  for _ in range(2):
    fused.step()
  assert one.steps == fused.steps == 4
  for a, b in zip(jax.tree_util.tree_leaves(one.get_variables()), jax.tree_util.tree_leaves(fused.get_variables())):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
  np.testing.assert_array_equal(np.concatenate([k for k, _ in log_one]), np.concatenate([k for k, _ in log_fused]))
  np.testing.assert_allclose(np.concatenate([p for _, p in log_one]), np.concatenate([p for _, p in log_fused]), rtol=1e-4)


def test_loss_falls_on_a_fixed_batch():
  batch = _batches(1)[0]
  learner = _learner(DQNConfig(batch_size=8, target_update_period=10_000), [batch] * 200, [])
  losses = [float(learner.step()["loss"]) for _ in range(200)]
  assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
