"""Environments as `dm_env.Environment`s, built from a name: `make("atari:Pong", seed=0)`.

Names are `prefix:rest`, optionally with query options `prefix:rest?key=value&key2=value2`
(values parsed as int, float, true/false, else kept as strings; keyword `options` override them):

  gym:<id>                 any gymnasium id (`gym:CartPole-v1`; `gym:module:Id` imports module)
  atari:<Game>             ale-py with the Atari-100k protocol (`atari:Pong`, `atari:MsPacman`)
  atari:<Game>,<Game>,...  a sequence of games, the next every N steps: `atari:Pong,Boxing?switch_every=N`
  minigrid:<id>            MiniGrid partial-view image (`minigrid:MiniGrid-MemoryS7-v0`)
  popgym:<Name>            POPGym memory tasks, flat float32 observations (`popgym:CountRecallEasy`)
  dmc:<domain>-<task>      dm_control suite states, or pixels with `?pixels=84`
  memory_maze:<size>       Memory Maze 9x9 / 11x11 / 13x13 / 15x15 (needs EGL or OSMesa)

Any vector task takes `?permute_every=N` (and `&permute_seed=S`, default 0): its observation entries
permuted anew every N steps, a non-stationary sequence of tasks (`repertory.environments.nonstationary`).

Each prefix's package is imported only when that prefix is used, so importing this module is
cheap. `available(prefix)` lists the valid names of a prefix.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Optional

import dm_env

from repertory.environments.specs import EnvironmentSpec, make_environment_spec
from repertory.errors import ConfigError

# prefix → (module under repertory.environments, factory function, listing function).
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "gym": ("gym_adapter", "make_gym", "available"),
    "atari": ("atari", "make_atari", "available"),
    "minigrid": ("minigrid_tasks", "make_minigrid", "available"),
    "popgym": ("popgym_tasks", "make_popgym", "available"),
    "dmc": ("dm_control_suite", "make_dmc", "available"),
    "memory_maze": ("memory_maze_tasks", "make_memory_maze", "available"),
}

KNOWN_PREFIXES: tuple[str, ...] = tuple(_REGISTRY)

__all__ = ["make", "available", "parse_name", "KNOWN_PREFIXES", "EnvironmentSpec",
           "make_environment_spec"]


def _function(prefix: str, which: int) -> Callable[..., Any]:
  module_name, *functions = _REGISTRY[prefix]
  module = importlib.import_module(f"repertory.environments.{module_name}")
  return getattr(module, functions[which])


def _parse_value(text: str) -> Any:
  lowered = text.lower()
  if lowered in ("true", "false"):
    return lowered == "true"
  if lowered in ("none", "null"):
    return None
  for convert in (int, float):
    try:
      return convert(text)
    except ValueError:
      pass
  return text


def _unknown_prefix(name: str) -> ConfigError:
  return ConfigError(f"environment name '{name}' must be 'prefix:rest' with a known prefix "
                     f"({', '.join(KNOWN_PREFIXES)}), e.g. 'atari:Pong'")


def parse_name(name: str) -> tuple[str, str, dict[str, Any]]:
  """Splits `prefix:rest?k=v&...` into (prefix, rest, query options); ConfigError if malformed."""
  if not isinstance(name, str):
    raise _unknown_prefix(repr(name))
  prefix, sep, rest = name.partition(":")
  if not sep or prefix not in _REGISTRY:
    raise _unknown_prefix(name)
  rest, _, query = rest.partition("?")
  if not rest:
    raise ConfigError(f"environment name '{name}' has nothing after '{prefix}:'; list valid "
                      f"names with repertory.environments.available('{prefix}')")
  options: dict[str, Any] = {}
  for item in filter(None, query.split("&")):
    key, eq, value = item.partition("=")
    if not eq or not key:
      raise ConfigError(f"environment name '{name}': query item '{item}' must be key=value")
    options[key] = _parse_value(value)
  return prefix, rest, options


def module_to_import(name: str) -> Optional[str]:
  """The Python module that building `name` imports by name (`gym:<module>:<Id>`), or None."""
  prefix, rest, _ = parse_name(name)
  return rest.split(":", 1)[0] if prefix == "gym" and ":" in rest else None


def make(name: str, seed: int = 0, **options) -> dm_env.Environment:
  """Builds the environment `name` (`prefix:rest[?k=v&...]`) seeded with `seed`.

  Raises:
    ConfigError: unknown or malformed prefix, unknown id within a prefix, or bad options.
  """
  prefix, rest, query_options = parse_name(name)
  merged = {**query_options, **options}
  permute_every, permute_seed = merged.pop("permute_every", None), merged.pop("permute_seed", 0)
  environment = _function(prefix, 0)(rest, seed=seed, **merged)
  if permute_every is not None:
    from repertory.environments.nonstationary import PermutedObservations
    if not isinstance(permute_every, int):
      raise ConfigError(f"environment name '{name}': permute_every={permute_every!r} must be a whole number of steps")
    environment = PermutedObservations(environment, permute_every, permute_seed)
  return environment


def available(prefix: str) -> list[str]:
  """The valid names after `prefix:` (imports that prefix's package)."""
  if prefix not in _REGISTRY:
    raise ConfigError(f"unknown environment prefix '{prefix}'; known prefixes: "
                      f"{', '.join(KNOWN_PREFIXES)}")
  return _function(prefix, 1)()
