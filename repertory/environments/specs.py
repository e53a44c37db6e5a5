"""The environment spec an agent builder needs (Acme's `specs.EnvironmentSpec`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import dm_env


@dataclasses.dataclass(frozen=True)
class EnvironmentSpec:
  """Specs of what an environment emits and accepts (nests of `dm_env.specs.Array`)."""

  observations: Any
  actions: Any
  rewards: Any
  discounts: Any


def make_environment_spec(environment: dm_env.Environment) -> EnvironmentSpec:
  """Reads the four specs of a `dm_env.Environment` into an `EnvironmentSpec`."""
  return EnvironmentSpec(
      observations=environment.observation_spec(),
      actions=environment.action_spec(),
      rewards=environment.reward_spec(),
      discounts=environment.discount_spec(),
  )
