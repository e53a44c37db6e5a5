"""`memory_maze:<size>` — Memory Maze (Pasukonis et al. 2022, arXiv 2210.13383): 9x9, 11x11,
13x13 or 15x15 3D mazes (MuJoCo through dm_control) where the agent must revisit coloured
targets, a DMLab-like long-term-memory benchmark.

The package's dm_env task is used directly (`memory_maze.tasks.memory_maze_<size>`, with
`image_only_obs=True`): observation uint8 (64, 64, 3) first-person image, `DiscreteArray(6)`
actions, 4 Hz control, episode lengths 1000/2000/3000/4000 steps (time limit → LAST, discount 1).
Options are passed to the task function (e.g. `good_visibility=True`, `control_freq=40`).

Needs EGL or OSMesa (checked before import). memory-maze 1.0.3's package `__init__` imports the
legacy `gym` package only to register gym ids; when `gym` is missing the submodules are loaded
without that `__init__` (the dm_env task API does not need gym).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import sys
import types

from repertory.environments import dm_env_wrappers
from repertory.environments import rendering
from repertory.errors import ConfigError

SIZES = ("9x9", "11x11", "13x13", "15x15")


def available() -> list[str]:
  return list(SIZES)


def _import_tasks():
  """Imports `memory_maze.tasks`, tolerating a missing legacy `gym` package."""
  try:
    with contextlib.redirect_stdout(io.StringIO()):  # It prints a note before re-raising.
      return importlib.import_module("memory_maze.tasks")
  except ModuleNotFoundError as error:
    if error.name != "gym":
      raise
  spec = importlib.util.find_spec("memory_maze")
  package = types.ModuleType("memory_maze")
  package.__path__ = list(spec.submodule_search_locations)
  package.__spec__ = spec
  package.__file__ = spec.origin
  sys.modules["memory_maze"] = package
  return importlib.import_module("memory_maze.tasks")


def make_memory_maze(size: str, seed: int = 0, **options):
  """`memory_maze:<size>`; options go to `memory_maze.tasks.memory_maze_<size>(...)`."""
  if size not in SIZES:
    raise ConfigError(f"unknown memory_maze size '{size}'; valid: {', '.join(SIZES)} "
                      "(repertory.environments.available('memory_maze'))")
  for forced in ("seed", "image_only_obs"):
    if forced in options:
      raise ConfigError(f"memory_maze option '{forced}' is set by repertory; remove it")
  rendering.require_gl_backend(f"memory_maze:{size}")
  tasks = _import_tasks()
  task_fn = getattr(tasks, "memory_maze_" + size)
  try:
    env = task_fn(seed=seed, image_only_obs=True, **options)
  except TypeError as error:
    raise ConfigError(f"memory_maze:{size} rejected options {sorted(options)}: {error}") from error
  return dm_env_wrappers.Float32Wrapper(env)
