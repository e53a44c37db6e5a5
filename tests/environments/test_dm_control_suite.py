"""`dmc:<domain>-<task>` states and pixels, and the GL backend check."""

import ctypes.util

import numpy as np
import pytest

from repertory import environments
from repertory.environments import rendering
from repertory.errors import ConfigError


def test_states_cartpole_balance_runs():
  env = environments.make("dmc:cartpole-balance", seed=0)
  spec = env.observation_spec()
  assert spec.shape == (5,) and spec.dtype == np.float32  # position (3) + velocity (2).
  action_spec = env.action_spec()
  assert action_spec.dtype == np.float32 and action_spec.shape == (1,)
  timestep = env.reset()
  assert timestep.first() and timestep.observation.dtype == np.float32
  for _ in range(10):
    timestep = env.step(np.zeros(1, np.float32))
    assert timestep.mid() and timestep.observation.shape == (5,)
    assert timestep.reward.dtype == np.float32 and timestep.discount == np.float32(1.0)


def test_states_are_seeded():
  first = environments.make("dmc:cartpole-swingup", seed=3).reset().observation
  again = environments.make("dmc:cartpole-swingup", seed=3).reset().observation
  other = environments.make("dmc:cartpole-swingup", seed=4).reset().observation
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


@pytest.mark.skipif(rendering.gl_backend() is None,
                    reason="dmc pixels need MuJoCo rendering through EGL or OSMesa; "
                           "apt-get install libegl1 libegl-mesa0 or libosmesa6")
def test_pixels_frame_stack_and_action_repeat():
  env = environments.make("dmc:cartpole-balance?pixels=84", seed=0)
  assert env.observation_spec().shape == (84, 84, 9)
  assert env.observation_spec().dtype == np.uint8
  timestep = env.reset()
  first = timestep.observation
  assert first.shape == (84, 84, 9) and first.dtype == np.uint8 and first.any()
  # The stack starts as three copies of the first frame.
  np.testing.assert_array_equal(first[..., 0:3], first[..., 6:9])
  timestep = env.step(np.ones(1, np.float32))
  np.testing.assert_array_equal(timestep.observation[..., 3:6], first[..., 6:9])
  assert env.physics.data.time == pytest.approx(2 * env.physics.timestep())  # action_repeat 2.
  assert 0.0 < timestep.reward <= 2.0  # Two balance rewards in [0, 1] summed.


def test_missing_gl_backend_is_a_config_error(monkeypatch):
  monkeypatch.delenv("MUJOCO_GL", raising=False)
  monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
  assert rendering.gl_backend() is None
  with pytest.raises(ConfigError, match="EGL or OSMesa.*libosmesa6.*MUJOCO_GL=osmesa"):
    environments.make("dmc:cartpole-balance?pixels=84")
  with pytest.raises(ConfigError, match="EGL or OSMesa"):
    environments.make("memory_maze:9x9")


def test_disabled_mujoco_gl_counts_as_no_backend(monkeypatch):
  monkeypatch.setenv("MUJOCO_GL", "disable")
  assert rendering.gl_backend() is None
  monkeypatch.setenv("MUJOCO_GL", "osmesa")
  assert rendering.gl_backend() == "osmesa"
