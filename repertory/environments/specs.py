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


def _array_record(spec: Any) -> Any:
  if isinstance(spec, dm_env.specs.Array):
    record = {"shape": list(spec.shape), "dtype": str(spec.dtype)}
    if hasattr(spec, "num_values"):
      record["num_values"] = int(spec.num_values)
    return record
  if isinstance(spec, dict):
    return {key: _array_record(value) for key, value in sorted(spec.items())}
  if isinstance(spec, (tuple, list)):
    return [_array_record(value) for value in spec]
  return str(spec)


def spec_record(spec: EnvironmentSpec) -> dict:
  """The shapes, dtypes and action counts of a spec, as JSON (what a run's config.json records)."""
  return {"observations": _array_record(spec.observations), "actions": _array_record(spec.actions)}


def spec_difference(recorded: dict, spec: EnvironmentSpec) -> str:
  """'' when `spec` has the observations and actions `recorded`; else what differs, in a few words."""
  current = spec_record(spec)
  for part in ("observations", "actions"):
    if part in recorded and recorded[part] != current[part]:
      return f"{part} {recorded[part]} vs {current[part]}"
  return ""
