"""Agent registry: name → (config class, builder class), with `key=value` config overrides."""

import importlib
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from repertory.agents import config_values
from repertory.errors import ConfigError

_AGENTS: Dict[str, Tuple[str, str, str]] = {
    # name: (module, config class, builder class)
    "dqn": ("repertory.agents.dqn", "config.DQNConfig", "builder.DQNBuilder"),
    "der": ("repertory.agents.der", "config.DERConfig", "builder.DERBuilder"),
    "impala": ("repertory.agents.impala", "config.IMPALAConfig", "builder.IMPALABuilder"),
    "sac": ("repertory.agents.sac", "config.SACConfig", "builder.SACBuilder"),
}


def register(name: str, package: str, config_class: str, builder_class: str) -> None:
  _AGENTS[name] = (package, config_class, builder_class)


def agent_names() -> Tuple[str, ...]:
  return tuple(sorted(_AGENTS))


def _load(package: str, dotted: str) -> Any:
  module, attribute = dotted.rsplit(".", 1)
  return getattr(importlib.import_module(f"{package}.{module}"), attribute)


def parse_overrides(pairs: Sequence[str], reserved: Mapping[str, str] = {}) -> Tuple[Tuple[str, str], ...]:
  """`--config KEY=VALUE` flags → ((key, value), ...); `reserved` maps keys another flag sets to the error to give."""
  overrides = []
  for pair in pairs:
    if "=" not in pair:
      raise ConfigError(f"--config expects KEY=VALUE, got '{pair}'")
    key, value = (part.strip() for part in pair.split("=", 1))
    if key in reserved:
      raise ConfigError(reserved[key])
    overrides.append((key, value))
  return tuple(overrides)


def _config_class(name: str) -> Any:
  if name not in _AGENTS:
    raise ConfigError(f"unknown agent '{name}'; choose one of {', '.join(agent_names())}")
  package, config_class, _ = _AGENTS[name]
  return _load(package, config_class)


def preset_overrides(name: str, preset: Optional[str]) -> Tuple[Tuple[str, str], ...]:
  """The overrides of agent `name`'s published setting `preset` (its config's `PRESETS`); () for None."""
  if preset is None:
    return ()
  presets = getattr(_config_class(name), "PRESETS", {})
  if preset not in presets:
    raise ConfigError(f"--preset {preset} is unknown for the {name} agent; use one of {', '.join(presets) or '(none)'}")
  return tuple(presets[preset].items())


def make_config(name: str, overrides: Mapping[str, str] = ()) -> Any:
  """The agent's config with `overrides` (field → text) converted by each field's type annotation."""
  cls = _config_class(name)
  types = config_values.field_types(cls)
  values = {}
  for key, text in dict(overrides).items():
    if key in config_values.derived_names(cls):
      raise ConfigError(f"agent '{name}' config '{key}' is derived from other fields and cannot be set; "
                        f"see {cls.__name__}.{key}")
    if key not in types:
      raise ConfigError(f"agent '{name}' has no config field '{key}'; fields: {', '.join(sorted(types))}")
    values[key] = config_values.convert_field(name, key, types[key], str(text))
  config = cls(**values)
  config_values.check_ranges(name, config)
  return config


def make_builder(name: str, overrides: Mapping[str, str] = ()) -> Any:
  config = make_config(name, overrides)
  package, _, builder_class = _AGENTS[name]
  return _load(package, builder_class)(config)
