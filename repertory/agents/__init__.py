"""Agent registry: name → (config class, builder class), with `key=value` config overrides."""

import dataclasses
import importlib
from typing import Any, Dict, Mapping, Sequence, Tuple

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


def _convert(name: str, default: Any, text: str) -> Any:
  try:
    if isinstance(default, bool):
      if text.lower() not in ("true", "false", "1", "0"):
        raise ValueError(text)
      return text.lower() in ("true", "1")
    if isinstance(default, tuple):
      return tuple(int(x) for x in text.split(",") if x)
    if default is None:
      return float(text) if text.replace(".", "", 1).replace("e-", "", 1).isdigit() else text
    return type(default)(text)
  except ValueError:
    raise ConfigError(f"config value '{name}={text}' is not a {type(default).__name__}") from None


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


def make_config(name: str, overrides: Mapping[str, str] = ()) -> Any:
  if name not in _AGENTS:
    raise ConfigError(f"unknown agent '{name}'; choose one of {', '.join(agent_names())}")
  package, config_class, _ = _AGENTS[name]
  config = _load(package, config_class)()
  fields = {f.name: f for f in dataclasses.fields(config)}
  values = {}
  for key, text in dict(overrides).items():
    if key not in fields:
      raise ConfigError(f"agent '{name}' has no config field '{key}'; fields: {', '.join(sorted(fields))}")
    values[key] = _convert(key, getattr(config, key), str(text))
  return dataclasses.replace(config, **values)


def make_builder(name: str, overrides: Mapping[str, str] = ()) -> Any:
  config = make_config(name, overrides)
  package, _, builder_class = _AGENTS[name]
  return _load(package, builder_class)(config)
