"""Metrics to metrics.csv (one row per record, a `source` column) and TensorBoard event files.

A writer opened on an existing metrics.csv (a resumed run, a restarted counter) continues its `time` column
from the last row. Cutting the file back to a checkpoint's rows (`restore_snapshot`) also rewrites the
TensorBoard events from the rows kept, so neither holds a row the resumed run writes again.
"""

import csv
import os
import threading
import time
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from repertory.errors import ConfigError
from repertory.utils.files import replaced_atomically

LEADING_COLUMNS = ["source", "time", "actor_steps", "learner_steps", "episodes"]


def _number(text: str) -> Any:
  """A metrics.csv cell as the number it was written from, or None (empty, text, a bool)."""
  for convert in (int, float):
    try:
      return convert(text)
    except (TypeError, ValueError):
      pass
  return None


def _last_time(rows: List[Dict[str, str]]) -> float:
  for row in reversed(rows):
    value = _number(row.get("time"))
    if value is not None:
      return float(value)
  return 0.0


def _scalar(value: Any) -> Any:
  if isinstance(value, (str, bool, int, float)) or value is None:
    return value
  array = np.asarray(value)
  return array.item() if array.size == 1 else str(array.tolist())


class MetricsWriter:
  """Appends rows to `run_dir/metrics.csv` (growing the header when a new column appears) and TensorBoard."""

  def __init__(self, run_dir: str, tensorboard: bool = True):
    os.makedirs(run_dir, exist_ok=True)
    self.path = os.path.join(run_dir, "metrics.csv")
    self._lock = threading.Lock()
    self._columns: List[str] = list(LEADING_COLUMNS)
    self._start = time.time()
    self.rows = 0
    if os.path.exists(self.path):
      with open(self.path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
      self.rows = len(rows)
      self._columns = list(reader.fieldnames or self._columns)
      self._start -= _last_time(rows)
    else:
      self._rewrite([])
    self._tb_dir = os.path.join(run_dir, "tensorboard")
    self._tb = self._open_tensorboard() if tensorboard else None

  def _open_tensorboard(self):
    try:
      from tensorboardX import SummaryWriter
    except ImportError:  # e.g. a GPU host without tensorboardX: metrics.csv still gets every row
      return None
    return SummaryWriter(self._tb_dir, flush_secs=10)

  def _add_scalars(self, source: str, row: Mapping[str, Any]) -> None:
    step = row.get("actor_steps") or row.get("learner_steps") or 0
    for key, value in row.items():
      numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
      if numeric and key not in ("source", "time", "actor_steps"):
        self._tb.add_scalar(f"{source}/{key}", value, int(step))

  def _rewrite_tensorboard(self, rows: List[Dict[str, str]]) -> None:
    """Replaces the event files by the events of `rows` (what `write` would have logged for them)."""
    self._tb.close()
    for name in os.listdir(self._tb_dir):
      if name.startswith("events.out.tfevents"):
        os.remove(os.path.join(self._tb_dir, name))
    self._tb = self._open_tensorboard()
    for row in rows:
      self._add_scalars(row["source"], {k: _number(v) for k, v in row.items() if k != "source"})
    self._tb.flush()

  def _rewrite(self, rows: List[Dict[str, Any]]) -> None:
    with replaced_atomically(self.path, newline="") as f:
      writer = csv.DictWriter(f, self._columns)
      writer.writeheader()
      writer.writerows(rows)

  def write(self, source: str, row: Mapping[str, Any]) -> None:
    row = {k: _scalar(v) for k, v in row.items()}
    row["source"] = source
    row.setdefault("time", round(time.time() - self._start, 3))
    with self._lock:
      new = [k for k in row if k not in self._columns]
      if new:
        with open(self.path, newline="") as f:
          old_rows = list(csv.DictReader(f))
        self._columns += new
        self._rewrite(old_rows)
      with open(self.path, "a", newline="") as f:
        csv.DictWriter(f, self._columns).writerow(row)
      self.rows += 1
      if self._tb is not None:
        self._add_scalars(source, row)

  def snapshot_state(self) -> dict:
    return {"rows": self.rows}

  def restore_snapshot(self, state: dict) -> None:
    """Keeps the first `rows` rows: those written before the snapshot (a resume never repeats a row)."""
    with self._lock:
      with open(self.path, newline="") as f:
        rows = list(csv.DictReader(f))
      if len(rows) < state["rows"]:
        raise ConfigError(f"'{self.path}' has {len(rows)} rows, fewer than the {state['rows']} of the checkpoint; "
                          "restore the file, or start the run afresh with --overwrite")
      kept = rows[:state["rows"]]
      self._rewrite(kept)
      self.rows = state["rows"]
      self._start = time.time() - _last_time(kept)
      if self._tb is not None:
        self._rewrite_tensorboard(kept)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(path: str, source: Optional[str] = None) -> List[Dict[str, str]]:
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  return [r for r in rows if source is None or r["source"] == source]
