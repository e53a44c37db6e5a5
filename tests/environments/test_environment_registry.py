"""`repertory.environments.make`: name parsing, errors, lazy imports, environment specs."""

import subprocess
import sys

import dm_env
import numpy as np
import pytest

from repertory import environments
from repertory.errors import ConfigError


@pytest.mark.parametrize("name", ["nope:Pong", "Pong", "", "atari", ":Pong", "ATARI:Pong"])
def test_unknown_or_malformed_prefix_lists_known_prefixes(name):
  with pytest.raises(ConfigError) as error:
    environments.make(name)
  message = str(error.value)
  assert "\n" not in message
  for prefix in environments.KNOWN_PREFIXES:
    assert prefix in message


def test_known_prefixes():
  assert set(environments.KNOWN_PREFIXES) == {
      "gym", "atari", "minigrid", "popgym", "dmc", "memory_maze"}


@pytest.mark.parametrize("name, named", [
    ("gym:NoSuchEnv-v0", "NoSuchEnv-v0"),
    ("atari:NoSuchGame", "NoSuchGame"),
    ("minigrid:MiniGrid-NoSuch-v0", "MiniGrid-NoSuch-v0"),
    ("popgym:NoSuchTask", "NoSuchTask"),
    ("dmc:cartpole-nosuchtask", "cartpole-nosuchtask"),
    ("dmc:nosuchdomain-run", "nosuchdomain-run"),
    ("dmc:cartpole", "cartpole"),
    ("memory_maze:8x8", "8x8"),
    ("atari:", "atari:"),
])
def test_unknown_id_names_it_and_says_how_to_list(name, named):
  with pytest.raises(ConfigError) as error:
    environments.make(name)
  message = str(error.value)
  assert named in message
  assert "available(" in message
  assert "\n" not in message


def test_unknown_option_is_config_error():
  with pytest.raises(ConfigError, match="frame_skipp"):
    environments.make("atari:Pong", frame_skipp=4)
  with pytest.raises(ConfigError, match="must be key=value"):
    environments.make("dmc:cartpole-balance?pixels")


def test_parse_name_query_options():
  assert environments.parse_name("dmc:walker-walk?pixels=84&frame_stack=3") == (
      "dmc", "walker-walk", {"pixels": 84, "frame_stack": 3})
  assert environments.parse_name("atari:Pong?training=false&sticky_actions=0.25") == (
      "atari", "Pong", {"training": False, "sticky_actions": 0.25})


def test_available_lists_names():
  assert "Pong" in environments.available("atari")
  assert "MsPacman" in environments.available("atari")
  assert "RepeatPreviousEasy" in environments.available("popgym")
  assert "MiniGrid-MemoryS7-v0" in environments.available("minigrid")
  assert environments.available("memory_maze") == ["9x9", "11x11", "13x13", "15x15"]
  with pytest.raises(ConfigError):
    environments.available("nope")


def test_import_is_light():
  code = ("import sys, repertory.environments; "
          "heavy = [m for m in ('gymnasium', 'ale_py', 'minigrid', 'popgym', 'dm_control', "
          "'mujoco', 'memory_maze', 'jax', 'tensorflow', 'reverb', 'ray') if m in sys.modules]; "
          "print(heavy)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "[]"


def test_make_environment_spec():
  env = environments.make("gym:CartPole-v1")
  spec = environments.make_environment_spec(env)
  assert isinstance(spec, environments.EnvironmentSpec)
  assert spec.observations.shape == (4,) and spec.observations.dtype == np.float32
  assert isinstance(spec.actions, dm_env.specs.DiscreteArray) and spec.actions.num_values == 2
  assert spec.rewards.dtype == np.float32 and spec.discounts.dtype == np.float32
  with pytest.raises(Exception):
    spec.actions = None  # Frozen.
