"""The files of a native replay-table checkpoint, written atomically and checked when read.

A checkpoint directory holds `table.npz` (the stored items, one array per leaf of the item structure,
keys, priorities and counters) and `meta.json` (backend "native", format, the table config, the item
structure, the random state, and the sha256 of table.npz). Item structures (nests of dicts, lists,
tuples and namedtuples) are written as JSON with null leaves and namedtuple types by import path, so
`tree.unflatten_as` rebuilds items of the same types.
"""

import collections
import functools
import hashlib
import importlib
import json
import os
import shutil
import tempfile
import zipfile
from typing import Any, Dict, Optional, Tuple

import numpy as np
import tree

from repertory.errors import ConfigError

FORMAT = 1

_MAPPINGS = {"dict": dict, "OrderedDict": collections.OrderedDict}


def encode_structure(structure: Any) -> Any:
  """A JSON-able description of `structure` (whose leaves are None, as `tree.map_structure` leaves them)."""
  if structure is None:
    return None
  kind = type(structure)
  if isinstance(structure, tuple) and hasattr(kind, "_fields"):
    return {"namedtuple": f"{kind.__module__}:{kind.__qualname__}", "fields": list(kind._fields),
            "items": [encode_structure(x) for x in structure]}
  if kind in (tuple, list):
    return {kind.__name__: [encode_structure(x) for x in structure]}
  if kind.__name__ in _MAPPINGS and kind is _MAPPINGS[kind.__name__]:
    if not all(isinstance(k, str) or (isinstance(k, int) and not isinstance(k, bool)) for k in structure):
      raise ValueError("replay items can be checkpointed only with str or int dict keys")
    return {kind.__name__: [[k, encode_structure(v)] for k, v in structure.items()]}
  raise ValueError(f"replay items containing {kind.__name__} cannot be checkpointed; use dicts, lists, tuples "
                   "or namedtuples")


def _import(path: str, fields: list, where: str) -> type:
  module, qualname = path.split(":")
  try:
    kind = functools.reduce(getattr, qualname.split("."), importlib.import_module(module))
  except (ImportError, AttributeError):
    raise ConfigError(f"replay checkpoint {where}: cannot import item type {path}; pass example_item") from None
  if list(getattr(kind, "_fields", ())) != fields:
    raise ConfigError(f"replay checkpoint {where}: item type {path} now has fields {getattr(kind, '_fields', None)}, "
                      f"the checkpoint has {fields}; pass example_item")
  return kind


def _decode(spec: Any, where: str) -> Any:
  if spec is None:
    return None
  if "namedtuple" in spec:
    return _import(spec["namedtuple"], spec["fields"], where)(*[_decode(x, where) for x in spec["items"]])
  if "tuple" in spec:
    return tuple(_decode(x, where) for x in spec["tuple"])
  if "list" in spec:
    return [_decode(x, where) for x in spec["list"]]
  (name, entries), = spec.items()
  return _MAPPINGS[name]((k, _decode(v, where)) for k, v in entries)


def decode_structure(spec: Any, example_item: Optional[Any], num_leaves: int, where: str) -> Any:
  """The structure (None leaves) from `spec`, or from `example_item` when given.

  Raises:
    ConfigError: the description is unreadable or does not have `num_leaves` leaves.
  """
  if example_item is not None:
    structure = tree.map_structure(lambda _: None, example_item)
  else:
    try:
      structure = _decode(spec, where)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
      raise ConfigError(f"replay checkpoint {where} is corrupt: bad item structure ({type(e).__name__})") from None
  if len(tree.flatten(structure)) != num_leaves:
    raise ConfigError(f"replay checkpoint {where}: items have {num_leaves} leaves, the item structure "
                      f"{len(tree.flatten(structure))}")
  return structure


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def write(directory: str, arrays: Dict[str, np.ndarray], meta: Dict[str, Any]) -> str:
  """Writes a checkpoint into a staging directory, then swaps it in place of `directory`.

  Raises:
    ConfigError: `directory` holds files other than a checkpoint of ours (they are left alone).
  """
  directory = os.path.abspath(os.fspath(directory))
  if os.path.isdir(directory) and os.listdir(directory) and not os.path.isfile(os.path.join(directory, "meta.json")):
    raise ConfigError(f"{directory} holds something other than a native replay checkpoint; refusing to overwrite it")
  parent = os.path.dirname(directory)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.tmp-", dir=parent)
  try:
    with open(os.path.join(staging, "table.npz"), "wb") as f:
      np.savez(f, **arrays)
    meta = dict(meta, backend="native", format=FORMAT, sha256=_sha256(os.path.join(staging, "table.npz")))
    with open(os.path.join(staging, "meta.json"), "w") as f:
      json.dump(meta, f)
    if os.path.exists(directory):
      os.rename(directory, staging + ".old")
      os.rename(staging, directory)
      shutil.rmtree(staging + ".old")
    else:
      os.rename(staging, directory)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return directory


def _looks_like_reverb(directory: str) -> bool:
  for root, _, files in os.walk(directory):
    if root[len(directory):].count(os.sep) <= 2 and any(
        name == "DONE" or name.endswith((".tensor", ".table")) for name in files):
      return True
  return False


def read(directory: str) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
  """(meta, arrays) of the checkpoint in `directory`.

  Raises:
    ConfigError: no native checkpoint there (a Reverb one, say), another format, or corrupt files.
  """
  if not os.path.isdir(directory):
    raise ConfigError(f"replay checkpoint {directory}: no such directory")
  path = os.path.join(directory, "meta.json")
  if not os.path.isfile(path):
    hint = " (it looks like a Reverb checkpoint)" if _looks_like_reverb(directory) else ""
    raise ConfigError(f"{directory} holds no native replay-table checkpoint (no meta.json){hint}; "
                      "restore from a directory written by Table.checkpoint")
  try:
    with open(path) as f:
      meta = json.load(f)
    backend, version, digest = meta.get("backend"), meta.get("format"), meta.get("sha256")
  except (OSError, ValueError, AttributeError) as e:
    raise ConfigError(f"replay checkpoint {directory} is corrupt: unreadable meta.json ({type(e).__name__})") from None
  if backend != "native":
    raise ConfigError(f"{directory} holds a {backend!r} replay checkpoint, not a native one")
  if version != FORMAT:
    raise ConfigError(f"replay checkpoint {directory} has format {version!r}; this version reads format {FORMAT}")
  npz = os.path.join(directory, "table.npz")
  if not os.path.isfile(npz) or _sha256(npz) != digest:
    raise ConfigError(f"replay checkpoint {directory} is corrupt: table.npz is missing or does not match its sha256")
  try:
    with np.load(npz, allow_pickle=False) as contents:
      arrays = {name: contents[name] for name in contents.files}
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise ConfigError(f"replay checkpoint {directory} is corrupt: unreadable table.npz ({type(e).__name__})") from None
  return meta, arrays
