"""The counter node: step counts shared by all nodes, the run's budget, and the metrics files (metrics.csv,
TensorBoard) every node writes rows to; counter.json is what a restarted or resumed counter starts from."""

import collections
import json
import math
import os
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np

from repertory.launch.service import Service
from repertory.utils.files import numbered, write_json
from repertory.utils.loggers import MetricsWriter


ACTORS_HELD = -1  # `reserve_actor_steps` during a checkpoint round: ask again shortly
COUNTS_DIR = "checkpoint_counts"  # <learner step>.json: the counts saved with each learner checkpoint


def steps_with_counts(run_dir: str) -> List[int]:
  """The learner steps whose checkpoint round saved its counts, oldest first."""
  return numbered(os.path.join(run_dir, COUNTS_DIR), ".json")


class CounterService(Service):
  """Shared step counts, an exact actor-step budget, and the run's metrics files."""

  SNAPSHOT_FIELDS = ("_counts", "_recent_returns", "_last_evaluation", "_writer")  # for a `sync` resume

  def __init__(self, run_dir: str, max_actor_steps: int, resume: bool = False, save_every_s: float = 1.0,
               checkpoint_step: Optional[int] = None):
    """`resume`: take the counts over from counter.json (a restarted node, a resumed run); with `checkpoint_step`
    (a resumed thread/ray run whose learner restores that checkpoint), from the counts saved with it instead,
    dropping the metrics rows written after it (counter.json still, for a checkpoint saved without counts)."""
    super().__init__()
    self._run_dir = run_dir
    self._path = os.path.join(run_dir, "counter.json")
    self._counts: Dict[str, float] = {"actor_steps": 0, "learner_steps": 0, "episodes": 0}
    self._last_evaluation = math.nan
    self._restored: Dict[str, float] = {}
    self._restored_from = "counter.json"
    self._writer = MetricsWriter(run_dir)
    with_checkpoint = self._checkpoint_path(checkpoint_step) if checkpoint_step is not None else None
    if resume and with_checkpoint is not None and os.path.exists(with_checkpoint):
      with open(with_checkpoint) as f:
        self._restored = json.load(f)
      self._writer.restore_snapshot({"rows": int(self._restored.pop("metrics_rows"))})
      self._restored_from = f"the counts of learner checkpoint {checkpoint_step}"
    elif resume and os.path.exists(self._path):
      with open(self._path) as f:
        self._restored = json.load(f)
    if self._restored:
      self._counts.update(self._restored)
      self._last_evaluation = float(self._counts.pop("evaluation_return", math.nan))
    self._start = time.monotonic() - float(self._counts.pop("elapsed_s", 0.0))
    self._save_every_s, self._saved_at = save_every_s, time.monotonic()
    self._max_actor_steps = max_actor_steps
    self._reserved: Dict[int, int] = {}
    self._held_until = 0.0  # monotonic time; before it, actors get no steps (a checkpoint round's instant)
    self._lock = threading.Lock()
    self._recent_returns: collections.deque = collections.deque(maxlen=20)

  def reserve_actor_steps(self, actor_id: int, wanted: int) -> int:
    """Grants up to `wanted` steps so that all actors together stop exactly at the budget; ACTORS_HELD while
    actors are held."""
    with self._lock:
      self._reserved.pop(actor_id, None)  # a restarted actor's unrun reservation lapses
      if time.monotonic() < self._held_until:
        return ACTORS_HELD
      left = self._max_actor_steps - int(self._counts["actor_steps"]) - sum(self._reserved.values())
      granted = max(0, min(wanted, left))
      if granted:
        self._reserved[actor_id] = granted
      return granted

  def hold_actors(self, timeout_s: float) -> None:
    """Grants no more actor steps until `release_actors` (or for `timeout_s` at most, should the caller die)."""
    with self._lock:
      self._held_until = time.monotonic() + timeout_s

  def actors_held(self) -> bool:
    """Whether actors are held and every step granted before is counted (its items written to the replay)."""
    with self._lock:
      return time.monotonic() < self._held_until and not self._reserved

  def release_actors(self) -> None:
    with self._lock:
      self._held_until = 0.0

  def increment(self, actor_id: Optional[int] = None, **deltas: float) -> Dict[str, float]:
    """Adds `deltas`; saves counter.json when the last save is `save_every_s` old (what a restarted counter
    or a resumed run takes over)."""
    with self._lock:
      if actor_id is not None:
        self._reserved.pop(actor_id, None)
      for key, value in deltas.items():
        self._counts[key] = self._counts.get(key, 0) + value
      counts = dict(self._counts)
    if time.monotonic() - self._saved_at >= self._save_every_s:
      self.save()
    return counts

  def set_learner_steps(self, steps: int) -> None:
    """A learner restored from a checkpoint continues from that checkpoint's step."""
    with self._lock:
      self._counts["learner_steps"] = steps

  def restored_counts(self) -> Dict[str, float]:
    return dict(self._restored)

  def recovery(self) -> str:
    if not self._restored:
      return "nothing: counts start at 0"
    return f"{self._restored_from} at {int(self._restored.get('actor_steps', 0))} actor steps"

  def get(self) -> Dict[str, float]:
    with self._lock:
      counts = dict(self._counts)
    counts["recent_return"] = float(np.mean(self._recent_returns)) if self._recent_returns else math.nan
    counts["evaluation_return"] = self._last_evaluation
    counts["elapsed_s"] = time.monotonic() - self._start
    return counts

  def record(self, source: str, row: Dict[str, Any]) -> None:
    with self._lock:
      full = {"actor_steps": int(self._counts["actor_steps"]), "learner_steps": int(self._counts["learner_steps"]),
              "episodes": int(self._counts["episodes"])}
    full.update(row)
    if source == "actor" and "episode_return" in row:
      self._recent_returns.append(float(row["episode_return"]))
    if source == "evaluator" and "episode_return" in row:
      self._last_evaluation = float(row["episode_return"])
    self._writer.write(source, full)

  def _checkpoint_path(self, learner_step: int) -> str:
    return os.path.join(self._run_dir, COUNTS_DIR, f"{learner_step}.json")

  def save(self, checkpoint_step: Optional[int] = None) -> None:
    """Writes counter.json; with `checkpoint_step`, also the counts and metrics row count that go with the
    learner checkpoint of that step (what a resumed thread/ray run starts from), keeping the last two."""
    with self._lock:
      counts = dict(self._counts, evaluation_return=self._last_evaluation, elapsed_s=time.monotonic() - self._start)
      self._saved_at = time.monotonic()
      write_json(self._path, counts)
      if checkpoint_step is not None:
        os.makedirs(os.path.join(self._run_dir, COUNTS_DIR), exist_ok=True)
        write_json(self._checkpoint_path(checkpoint_step), dict(counts, metrics_rows=self._writer.rows))
        for old in steps_with_counts(self._run_dir)[:-2]:
          os.remove(self._checkpoint_path(old))

  def stop(self) -> None:
    self.save()
    self._writer.close()
    super().stop()

