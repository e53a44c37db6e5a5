"""The gymnasium → dm_env adapter: discounts at episode ends, seeding, spec conversion."""

import dm_env
import gymnasium
import numpy as np
from gymnasium import spaces

from repertory import environments
from repertory.environments import gym_adapter


def _run_until_last(env, action, limit=10_000):
  timestep = env.reset()
  assert timestep.first() and timestep.reward is None and timestep.discount is None
  steps = 0
  while not timestep.last():
    timestep = env.step(action)
    steps += 1
    assert steps < limit
    assert timestep.reward.dtype == np.float32 and timestep.discount.dtype == np.float32
    if not timestep.last():
      assert timestep.discount == 1.0
  return timestep, steps


def test_termination_gives_discount_zero():
  env = environments.make("gym:CartPole-v1", seed=0)
  # Always pushing right topples the pole long before the 500-step limit: a termination.
  timestep, steps = _run_until_last(env, 1)
  assert steps < 100
  assert timestep.discount == 0.0


def test_time_limit_truncation_gives_discount_one():
  env = environments.make("gym:MountainCar-v0", seed=0, max_episode_steps=25)
  timestep, steps = _run_until_last(env, 1)
  assert steps == 25
  assert timestep.last() and timestep.discount == 1.0


def test_cartpole_truncation_through_query_option():
  env = environments.make("gym:CartPole-v1?max_episode_steps=5", seed=0)
  # Alternating actions keep the pole up for 5 steps, so the end is the time limit.
  env.reset()
  for t in range(5):
    timestep = env.step(t % 2)
  assert timestep.last() and timestep.discount == 1.0


def test_step_after_last_resets_and_seed_applies_to_first_reset_only():
  env = environments.make("gym:CartPole-v1", seed=3)
  first = env.reset().observation
  twin = environments.make("gym:CartPole-v1", seed=3)
  np.testing.assert_array_equal(twin.reset().observation, first)
  other = environments.make("gym:CartPole-v1", seed=4)
  assert not np.array_equal(other.reset().observation, first)
  _run_until_last(env, 1)
  timestep = env.step(0)
  assert timestep.first()
  assert not np.array_equal(timestep.observation, first)  # Not re-seeded.


def test_same_seed_same_actions_same_observations():
  def rollout(seed):
    env = environments.make("gym:CartPole-v1", seed=seed)
    observations = [env.reset().observation]
    for t in range(30):
      observations.append(env.step((t * 7) % 2).observation)
    return np.stack(observations)
  np.testing.assert_array_equal(rollout(11), rollout(11))


def test_observation_conversions():
  spec, fn = gym_adapter.space_converter(spaces.Discrete(4, start=1))
  assert spec.shape == (4,) and spec.dtype == np.float32
  np.testing.assert_array_equal(fn(2), [0, 1, 0, 0])
  spec, fn = gym_adapter.space_converter(spaces.MultiDiscrete([2, 3]))
  np.testing.assert_array_equal(fn(np.array([1, 2])), [0, 1, 0, 0, 1])
  spec, fn = gym_adapter.space_converter(spaces.Tuple((spaces.Discrete(2), spaces.Box(0, 1, (2,)))))
  assert spec.shape == (4,)
  np.testing.assert_allclose(fn((1, np.array([0.5, 0.25]))), [0, 1, 0.5, 0.25])
  spec, fn = gym_adapter.space_converter(spaces.Box(0, 255, (3, 3, 3), np.uint8))
  assert spec.dtype == np.uint8 and spec.shape == (3, 3, 3)
  spec, fn = gym_adapter.space_converter(spaces.Box(-1.0, 1.0, (2,), np.float64))
  assert spec.dtype == np.float32 and fn(np.zeros(2)).dtype == np.float32


def test_action_conversions():
  spec, fn = gym_adapter.action_converter(spaces.Discrete(3, start=-1))
  assert isinstance(spec, dm_env.specs.DiscreteArray) and spec.num_values == 3
  assert fn(np.int32(0)) == -1
  spec, fn = gym_adapter.action_converter(spaces.Box(-2.0, 2.0, (1,), np.float32))
  assert isinstance(spec, dm_env.specs.BoundedArray) and spec.dtype == np.float32
  np.testing.assert_array_equal(spec.maximum, [2.0])


def test_wraps_an_existing_gymnasium_env():
  env = gym_adapter.GymnasiumEnvironment(gymnasium.make("Pendulum-v1"), seed=0)
  assert isinstance(env.action_spec(), dm_env.specs.BoundedArray)
  env.reset()
  timestep = env.step(np.array([0.5], np.float32))
  assert timestep.mid() and timestep.observation.dtype == np.float32


def test_ale_ids_are_registered_on_demand():
  env = environments.make("gym:ALE/Pong-v5", seed=0)
  assert env.observation_spec().dtype == np.uint8
  assert env.observation_spec().shape == (210, 160, 3)
