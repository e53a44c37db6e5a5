"""Writers and samplers for a native replay table held by another node.

`table` is anything with the replay node's methods (`insert_batch`, `sample`, `update_priorities`): the
replay service itself under the thread launcher, or a proxy whose calls are Ray remote calls. A writer
sends one call per chunk of items, not one per item; a sampler asks for one batch per call (the
learner's prefetch thread keeps several in flight).
"""

from typing import Any, List, Optional, Sequence

import numpy as np

from repertory.replay.types import ReplayBatch


class TableWriter:
  """Buffers an actor's items; `flush()` inserts them with one call (the actor flushes once per chunk of
  steps, so `insert` never blocks inside the environment loop)."""

  def __init__(self, table: Any, timeout_s: float = 60.0):
    self._table = table
    self._timeout_s = timeout_s
    self._items: List[Any] = []
    self._priorities: List[Optional[float]] = []

  def insert(self, item: Any, priority: Optional[float] = None) -> None:
    self._items.append(item)
    self._priorities.append(priority)

  def insert_batch(self, items: Sequence[Any], priorities: Optional[Sequence[Optional[float]]] = None) -> None:
    self._items.extend(items)
    self._priorities.extend(priorities if priorities is not None else [None] * len(items))
    self.flush()

  def pending(self) -> int:
    return len(self._items)

  def flush(self) -> None:
    """Inserts the buffered items; raises TimeoutError (keeping what is left) while the rate limiter holds
    inserts back for longer than the timeout."""
    while self._items:
      inserted = self._table.insert_batch(self._items, self._priorities, self._timeout_s)
      del self._items[:inserted], self._priorities[:inserted]
      if self._items and inserted == 0:
        raise TimeoutError(f"replay held {len(self._items)} inserts back for {self._timeout_s:.0f} s")

  def close(self) -> None:
    self._items, self._priorities = [], []


class TableSampler:
  """An iterator of `ReplayBatch`es from a table node, with priority write-back."""

  def __init__(self, table: Any, batch_size: int, timeout_s: float = 60.0):
    self._table = table
    self._batch_size = batch_size
    self._timeout_s = timeout_s

  def __iter__(self):
    return self

  def __next__(self) -> ReplayBatch:
    return self._table.sample(self._batch_size, self._timeout_s)  # TimeoutError while rate-limited

  def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
    self._table.update_priorities(np.asarray(keys), np.asarray(priorities))
