"""minigrid, popgym and memory-maze tasks through `repertory.environments.make`."""

import dm_env
import numpy as np
import pytest

from repertory import environments
from repertory.environments import rendering


@pytest.mark.parametrize("name", ["minigrid:MiniGrid-MemoryS7-v0", "minigrid:MiniGrid-Empty-5x5-v0"])
def test_minigrid_partial_view_image(name):
  env = environments.make(name, seed=0)
  assert env.observation_spec().shape == (7, 7, 3) and env.observation_spec().dtype == np.uint8
  assert env.action_spec().num_values == 7
  timestep = env.reset()
  assert timestep.observation.shape == (7, 7, 3) and timestep.observation.dtype == np.uint8
  timestep = env.step(2)  # Forward.
  assert timestep.observation.shape == (7, 7, 3)
  assert timestep.reward.dtype == np.float32


def test_minigrid_time_limit_is_a_truncation():
  env = environments.make("minigrid:MiniGrid-Empty-5x5-v0", seed=0, max_steps=5)
  env.reset()
  for _ in range(5):
    timestep = env.step(0)  # Turning left never reaches the goal.
  assert timestep.last() and timestep.discount == 1.0


@pytest.mark.parametrize("name, size", [
    ("popgym:RepeatPreviousEasy", 4), ("popgym:CountRecallEasy", 4), ("popgym:AutoencodeEasy", 6)])
def test_popgym_flat_float32_observations(name, size):
  env = environments.make(name, seed=0)
  spec = env.observation_spec()
  assert spec.shape == (size,) and spec.dtype == np.float32
  timestep = env.reset()
  assert timestep.observation.shape == (size,) and timestep.observation.dtype == np.float32
  steps = 0
  while not timestep.last():
    timestep = env.step(0)
    steps += 1
    assert timestep.observation.dtype == np.float32 and timestep.observation.shape == (size,)
    assert steps < 1_000
  assert timestep.discount in (0.0, 1.0)


def test_popgym_one_hot():
  env = environments.make("popgym:RepeatPreviousEasy", seed=0)
  observation = env.reset().observation
  assert observation.sum() == 1.0 and set(np.unique(observation)) <= {0.0, 1.0}


def test_popgym_multidiscrete_actions():
  env = environments.make("popgym:BattleshipEasy", seed=0)
  spec = env.action_spec()
  assert isinstance(spec, dm_env.specs.BoundedArray) and spec.shape == (2,)
  env.reset()
  assert env.step(np.array([1, 2], np.int32)).mid()


@pytest.mark.skipif(rendering.gl_backend() is None,
                    reason="memory_maze needs MuJoCo rendering through EGL or OSMesa; "
                           "apt-get install libegl1 libegl-mesa0 or libosmesa6")
def test_memory_maze_image_observations():
  env = environments.make("memory_maze:9x9", seed=0)
  spec = env.observation_spec()
  assert spec.shape == (64, 64, 3) and spec.dtype == np.uint8
  assert env.action_spec().num_values == 6
  env.reset()
  timestep = env.step(1)
  assert timestep.observation.shape == (64, 64, 3) and timestep.observation.dtype == np.uint8
  assert timestep.reward.dtype == np.float32 and timestep.discount == 1.0
