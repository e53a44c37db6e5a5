"""Host-side state of a run's Python objects (actors, adders, loops, counters), saved for an exact resume.

A class names the attributes that make up its state in `SNAPSHOT_FIELDS` (each class of the MRO its own),
or defines `snapshot_state()` / `restore_snapshot(state)` when its state is not a set of attributes.
`capture(obj)` walks those fields, descending into values that declare state themselves (also inside
lists and tuples), and `restore(obj, state)` puts the values back into freshly built objects of the same
shape: what is not state (jitted functions, environments, the learner, the replay table) comes from the
fresh objects.

Files (`write`/`read`) are one pickle, written to a temporary file and renamed (a half-written one is
never read), with the SHA-256 of the payload in the first line. Reading allows only the types that
states are made of (NumPy, collections, dm_env, Haiku core states, this package), so a run dir cannot run arbitrary code.
JAX arrays are written as NumPy arrays.
"""

import hashlib
import io
import pickle
from typing import Any, Dict

import numpy as np

from repertory.errors import ConfigError
from repertory.utils.files import replaced_atomically

_SAFE_BUILTINS = {"tuple", "list", "dict", "set", "frozenset", "slice", "complex", "bytearray", "bytes", "str",
                  "int", "float", "bool", "range"}
_SAFE_MODULES = ("numpy", "collections", "dm_env", "haiku.", "repertory.")  # haiku: recurrent core states


def _fields(obj: Any):
  for cls in reversed(type(obj).__mro__):
    yield from cls.__dict__.get("SNAPSHOT_FIELDS", ())


def has_state(obj: Any) -> bool:
  return hasattr(obj, "snapshot_state") or any(True for _ in _fields(obj))


def _encode(value: Any) -> Any:
  if value is not None and has_state(value):
    return {"__snapshot__": capture(value)}
  if type(value) in (list, tuple) and any(x is not None and has_state(x) for x in value):
    return {"__snapshots__": [_encode(x) for x in value]}
  return value


def capture(obj: Any) -> Dict[str, Any]:
  """The state of `obj`: its snapshot fields, those that hold stateful objects captured in turn."""
  if hasattr(obj, "snapshot_state"):
    return {"__custom__": obj.snapshot_state()}
  return {name: _encode(getattr(obj, name)) for name in _fields(obj)}


def _decode_into(current: Any, value: Any) -> Any:
  if isinstance(value, dict) and "__snapshot__" in value:
    restore(current, value["__snapshot__"])
    return current
  if isinstance(value, dict) and "__snapshots__" in value:
    for item, item_state in zip(current, value["__snapshots__"]):
      _decode_into(item, item_state)
    return current
  return value


def restore(obj: Any, state: Dict[str, Any]) -> None:
  """Puts `state` (from `capture` of an object built the same way) back into `obj`."""
  if "__custom__" in state:
    obj.restore_snapshot(state["__custom__"])
    return
  expected = list(_fields(obj))
  if sorted(state) != sorted(expected):
    raise ConfigError(f"the saved state of a {type(obj).__name__} has fields {sorted(state)}, this version "
                      f"{sorted(expected)}; resume with the version that wrote it")
  for name in expected:
    current = getattr(obj, name)
    decoded = _decode_into(current, state[name])
    if decoded is not current:
      setattr(obj, name, decoded)


class _Pickler(pickle.Pickler):
  def reducer_override(self, obj):
    if type(obj).__module__.startswith("jax") and hasattr(obj, "__array__") and hasattr(obj, "dtype"):
      return np.asarray(obj).__reduce__()
    return NotImplemented


class _SafeUnpickler(pickle.Unpickler):
  def find_class(self, module: str, name: str):
    if (module == "builtins" and name in _SAFE_BUILTINS) or module.startswith(_SAFE_MODULES) or (
        module == "copyreg" and name == "_reconstructor"):
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f"{module}.{name} is not a type a saved state holds")


def dumps(state: Any) -> bytes:
  buffer = io.BytesIO()
  _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
  return buffer.getvalue()


def write(path: str, state: Any) -> None:
  """Writes `state` to `path` atomically, its checksum first."""
  payload = dumps(state)
  with replaced_atomically(path, "wb") as f:
    f.write(hashlib.sha256(payload).hexdigest().encode() + b"\n")
    f.write(payload)


def _payload(path: str) -> bytes:
  try:
    with open(path, "rb") as f:
      digest, payload = f.readline().strip(), f.read()
  except OSError as e:
    raise ConfigError(f"cannot read the saved run state '{path}' ({e.strerror}); delete it to resume from the "
                      "learner checkpoint alone") from None
  if hashlib.sha256(payload).hexdigest().encode() != digest:
    raise ConfigError(f"the saved run state '{path}' does not match its checksum (a file was changed or cut "
                      "short); delete it to resume from the learner checkpoint alone")
  return payload


def verify(path: str) -> None:
  """One-line ConfigError when the state in `path` is unreadable or fails its checksum."""
  _payload(path)


def read(path: str) -> Any:
  """The state in `path`. One-line ConfigError when it is unreadable, altered or not ours."""
  payload = _payload(path)
  try:
    return _SafeUnpickler(io.BytesIO(payload)).load()
  except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError) as e:
    raise ConfigError(f"the saved run state '{path}' cannot be read ({e}); delete it to resume from the learner "
                      "checkpoint alone") from None

