"""Which replay service a distributed run uses: the native table service or Reverb.

`auto` (the default) takes the native service on every stack: Reverb's server listens on every interface without
authentication, where the native tables are reached only through Ray (loopback on one machine, Ray's token
authentication on a cluster), and served to another process the native service samples faster (BUILD_NOTES.md,
"Ports"). Reverb runs where it installs (the Python 3.11 stack) when asked for. Resolving never imports Reverb:
it only asks whether it is installed.
"""

import importlib.util
import json
import os
from typing import Any, Dict

from repertory.errors import ConfigError

BACKENDS = ("auto", "native", "reverb")


def reverb_installed() -> bool:
  return importlib.util.find_spec("reverb") is not None


def resolve_backend(name: str, launcher: str) -> str:
  """The concrete backend ("native" or "reverb") for `--replay name` under `launcher`."""
  if name not in BACKENDS:
    raise ConfigError(f"unknown replay backend '{name}'; choose one of {', '.join(BACKENDS)}")
  if launcher == "sync":
    if name == "reverb":
      raise ConfigError("--replay reverb needs --launcher thread or ray; sync keeps its replay table in process")
    return "native"
  if name == "reverb" and not reverb_installed():
    raise ConfigError("--replay reverb: dm-reverb is not installed (it needs Python 3.11 and TensorFlow 2.15); "
                      "use --replay native")
  return "native" if name == "auto" else name


def checkpoint_backend(directory: str) -> str:
  """"native", "reverb" (anything else that is not empty), or "" for a missing or empty directory."""
  if not os.path.isdir(directory) or not os.listdir(directory):
    return ""
  try:
    with open(os.path.join(directory, "meta.json")) as f:
      return "native" if json.load(f).get("backend") == "native" else "reverb"
  except (OSError, ValueError, AttributeError):
    return "reverb"


REVERB_TAGS_FILE = "tags.json"  # beside Reverb's own files; a native checkpoint keeps its tags in meta.json


def checkpoint_tags(directory: str) -> Dict[str, Any]:
  """The tags a replay checkpoint was written with ({} when it has none, or there is no checkpoint)."""
  backend = checkpoint_backend(directory)
  path = os.path.join(directory, "meta.json" if backend == "native" else REVERB_TAGS_FILE)
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, ValueError):
    return {}
  tags = record.get("tags", {}) if backend == "native" else record
  return tags if isinstance(tags, dict) else {}


def check_checkpoint_backend(directory: str, backend: str) -> bool:
  """Whether `directory` holds a replay checkpoint to restore; one that another backend wrote is refused."""
  found = checkpoint_backend(directory)
  if found and found != backend:
    raise ConfigError(f"replay checkpoint '{directory}' was written by the {found} replay service; "
                      f"resume with --replay {found}")
  return bool(found)
