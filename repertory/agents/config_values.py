"""`--config KEY=VALUE` text → a config field's value, by the field's type annotation.

Understood annotations: bool, int, float, str, Optional[X] ("none" → None), Tuple[X, ...] and
Tuple[X, Y] (comma-separated, "" or "()" → empty). A value of the wrong type is one ConfigError line
naming the field, its type and an example.
"""

import dataclasses
import math
import typing
from typing import Any, Dict, Tuple

from repertory.errors import ConfigError

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_EXAMPLES = {bool: "true", int: "32", float: "2.5e-4", str: "text"}


def field_types(config_class: type) -> Dict[str, Any]:
  """Field name → resolved annotation of a dataclass."""
  hints = typing.get_type_hints(config_class)
  return {f.name: hints[f.name] for f in dataclasses.fields(config_class)}


def type_name(annotation: Any) -> str:
  origin, args = typing.get_origin(annotation), typing.get_args(annotation)
  if origin is typing.Union:
    inner = [a for a in args if a is not type(None)]
    return f"Optional[{type_name(inner[0])}]" if len(inner) == 1 else " | ".join(map(type_name, inner))
  if origin is tuple:
    return f"Tuple[{', '.join('...' if a is Ellipsis else type_name(a) for a in args)}]"
  return getattr(annotation, "__name__", str(annotation))


def _example(annotation: Any) -> str:
  origin, args = typing.get_origin(annotation), typing.get_args(annotation)
  if origin is typing.Union:
    return _example([a for a in args if a is not type(None)][0]) + " or none"
  if origin is tuple:
    return ",".join(_example(a) for a in (args[:1] * 2 if args[-1:] == (Ellipsis,) else args))
  return _EXAMPLES.get(annotation, "value")


def _scalar(annotation: Any, text: str) -> Any:
  if annotation is bool:
    lowered = text.lower()
    if lowered not in _TRUE + _FALSE:
      raise ValueError(text)
    return lowered in _TRUE
  if annotation is int:
    value = float(text)  # "1e5" and "100000" both mean 100000
    if not value.is_integer():
      raise ValueError(text)
    return int(value)
  if annotation is float:
    value = float(text)
    if not math.isfinite(value):
      raise ValueError(text)
    return value
  if annotation is str:
    return text
  raise ValueError(text)


def convert(annotation: Any, text: str) -> Any:
  """Raises ValueError when `text` is not a value of `annotation`."""
  origin, args = typing.get_origin(annotation), typing.get_args(annotation)
  text = text.strip()
  if origin is typing.Union:
    inner = [a for a in args if a is not type(None)]
    if type(None) in args and text.lower() in ("none", "null"):
      return None
    for candidate in inner:
      try:
        return convert(candidate, text)
      except ValueError:
        continue
    raise ValueError(text)
  if origin is tuple:
    items = [] if text in ("", "()") else [part.strip() for part in text.strip("()").split(",") if part.strip()]
    if args[-1:] == (Ellipsis,):
      return tuple(convert(args[0], item) for item in items)
    if len(items) != len(args):
      raise ValueError(text)
    return tuple(convert(a, item) for a, item in zip(args, items))
  return _scalar(annotation, text)


def convert_field(config_name: str, field: str, annotation: Any, text: str) -> Any:
  try:
    return convert(annotation, text)
  except ValueError:
    raise ConfigError(f"{config_name} config value '{field}={text}' is not a {type_name(annotation)}; "
                      f"write e.g. {field}={_example(annotation)}") from None


def derived_names(config_class: type) -> Tuple[str, ...]:
  """The read-only properties of a config (derived from its fields; not settable by --config)."""
  return tuple(sorted(name for name, value in vars(config_class).items() if isinstance(value, property)))


# Ranges by field name, shared by every agent's config (a field an agent lacks is skipped).
_AT_LEAST_ONE = ("n_step", "batch_size", "target_update_period", "sgd_steps_per_call", "max_replay_size",
                 "num_critics")
_NON_NEGATIVE = ("min_replay_size", "epsilon_decay_steps", "importance_sampling_anneal_steps", "max_gradient_norm",
                 "priority_exponent", "reward_clip", "samples_per_insert_tolerance", "optimism_anneal_steps")
_UNIT_INTERVAL = ("discount", "epsilon_start", "epsilon_end", "evaluation_epsilon", "epsilon_train", "epsilon_eval",
                  "epsilon_floor_without_noise", "importance_sampling_exponent", "tau")


def _range_error(field: str, value: Any) -> str:
  if field.endswith("learning_rate") or field in ("adam_eps", "updates_per_actor_step"):
    return "" if value > 0 else "must be > 0"
  if field in _AT_LEAST_ONE:
    return "" if value >= 1 else "must be >= 1"
  if field in _NON_NEGATIVE:
    return "" if value >= 0 else "must be >= 0"
  if field in _UNIT_INTERVAL:
    return "" if 0.0 <= value <= 1.0 else "must be in [0, 1]"
  return ""


def check_ranges(name: str, config: Any) -> None:
  """ConfigError (one line) for a non-finite float or a value outside its field's range, e.g. a learning
  rate <= 0, a discount outside [0, 1] or n_step < 1."""
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      continue
    if isinstance(value, float) and not math.isfinite(value):
      raise ConfigError(f"{name} config {field.name}={value} is not a finite number; give a finite value")
    problem = _range_error(field.name, value)
    if problem:
      raise ConfigError(f"{name} config {field.name}={value} {problem}")
