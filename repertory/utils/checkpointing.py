"""Learner checkpoints with orbax: keep the newest few, restore the latest, each checked against its checksum.

Orbax writes a step to a temporary folder and renames it when complete, so a half-written step is never
the latest. After each save, the SHA-256 of every file of the step goes to `<directory>.sha256.json`
beside the folder; a step whose files no longer match is refused with one line that names the previous
step. Steps saved before checksums were recorded have none and are restored unchecked.
"""

import hashlib
import json
import os
from typing import Any, Dict, List, Optional

import jax
import numpy as np

from repertory.errors import ConfigError
from repertory.utils.files import numbered, write_json


def _digest(step_dir: str) -> str:
  digest = hashlib.sha256()
  for root, dirs, files in os.walk(step_dir):
    dirs.sort()
    for name in sorted(files):
      path = os.path.join(root, name)
      digest.update(os.path.relpath(path, step_dir).encode() + b"\0")
      with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
          digest.update(block)
  return digest.hexdigest()


def checksum_path(directory: str) -> str:
  return os.path.abspath(directory).rstrip(os.sep) + ".sha256.json"


def _checksums(directory: str) -> Dict[str, str]:
  try:
    with open(checksum_path(directory)) as f:
      record = json.load(f)
  except FileNotFoundError:
    return {}
  except (OSError, ValueError):
    raise ConfigError(f"'{checksum_path(directory)}' is unreadable; restore it, or delete it to resume without "
                      "checking the checkpoints") from None
  return record if isinstance(record, dict) else {}


def saved_steps(directory: str) -> List[int]:
  """The steps of the completed checkpoints in `directory`, oldest first."""
  return [step for step in numbered(directory) if os.path.isdir(os.path.join(directory, str(step)))]


def verify(directory: str, step: Optional[int] = None) -> Optional[int]:
  """Checks checkpoint `step` (default: the latest) against its recorded checksum; returns the step checked
  (None when there is no checkpoint). One-line ConfigError for a corrupted one, naming the previous step."""
  steps = saved_steps(directory)
  if step is None:
    step = steps[-1] if steps else None
  if step is None:
    return None
  expected = _checksums(directory).get(str(step))
  if expected is not None and _digest(os.path.join(directory, str(step))) != expected:
    earlier = [s for s in steps if s < step]
    way_out = (f"delete '{os.path.join(directory, str(step))}' to resume from checkpoint {earlier[-1]}" if earlier
               else "start the run afresh with --overwrite")
    raise ConfigError(f"checkpoint {step} in '{directory}' does not match its checksum (a file was changed or lost); "
                      f"{way_out}")
  return step


class Checkpointer:
  def __init__(self, directory: str, max_to_keep: int = 2):
    import orbax.checkpoint as ocp
    self._ocp = ocp
    self._directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    if jax.process_count() > 1:  # one process of a multi-host learner writes the (replicated) state alone
      me = jax.process_index()
      os.makedirs(self._directory, exist_ok=True)  # orbax creates no folder for a subset of processes
      options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=False, multiprocessing_options=
                                             ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me}))
    self._manager = ocp.CheckpointManager(self._directory, options=options)

  def save(self, step: int, state: Any) -> None:
    if self._manager.latest_step() == step:
      return  # nothing new since the last save
    state = jax.tree.map(np.asarray, state)
    self._manager.save(step, args=self._ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()
    kept = {str(s) for s in saved_steps(self._directory)}
    checksums = {k: v for k, v in _checksums(self._directory).items() if k in kept}
    checksums[str(step)] = _digest(os.path.join(self._directory, str(step)))
    path = checksum_path(self._directory)
    write_json(path, checksums, indent=1)

  @property
  def directory(self) -> str:
    return self._directory

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def restore(self, like: Any, step: Optional[int] = None) -> Any:
    """Restores into the structure of `like` (the freshly initialised state), after checking the checksum."""
    step = self._manager.latest_step() if step is None else step
    verify(self._directory, step)
    abstract = jax.tree.map(np.asarray, like)
    return self._manager.restore(step, args=self._ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self._manager.close()
