"""An in-process replay table with the interface of the Reverb backend.

For `sync` runs (one process, deterministic for a seed) and for machines without Reverb (the GPU
hosts run Python 3.12 without TensorFlow). Items are stored in preallocated numpy ring buffers.
"""

import threading
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import tree

from repertory.replay.config import TableConfig
from repertory.replay.types import ReplayBatch


class InProcessReplay:
  """A ring-buffer table: prioritized (proportional), uniform, or fifo (each item sampled once)."""

  def __init__(self, config: TableConfig, seed: int = 0):
    self._config = config
    self._rng = np.random.default_rng(seed)
    self._storage = None
    self._scaled = np.zeros(config.max_size, np.float64)  # priority ** priority_exponent, kept per slot
    self._keys = np.zeros(config.max_size, np.uint64)
    self._next_key = 1
    self._cursor = 0  # next slot to write
    self._size = 0
    self._fifo_start = 0
    self._max_priority = 1.0
    self._lock = threading.Lock()

  @property
  def config(self) -> TableConfig:
    return self._config

  def size(self) -> int:
    return self._size

  def can_sample(self, batch_size: int) -> bool:
    if self._config.sampler == "fifo":  # a queue hands out distinct items
      return self._size >= max(self._config.min_size_to_sample, batch_size)
    return self._size >= self._config.min_size_to_sample  # sampling is with replacement

  def insert(self, item: Any, priority: Optional[float] = None) -> None:
    """Inserts one item; priority None means the largest priority seen so far (Schaul et al. 2016)."""
    with self._lock:
      if self._storage is None:
        self._storage = tree.map_structure(
            lambda x: np.zeros((self._config.max_size,) + np.shape(x), np.asarray(x).dtype), item)
      slot = self._cursor
      tree.map_structure(lambda buf, x: buf.__setitem__(slot, x), self._storage, item)
      self._scaled[slot] = self._scale(self._max_priority if priority is None else float(priority))
      self._keys[slot] = self._next_key
      self._next_key += 1
      self._cursor = (slot + 1) % self._config.max_size
      if self._size == self._config.max_size and self._config.sampler == "fifo":
        self._fifo_start = self._cursor
      self._size = min(self._size + 1, self._config.max_size)

  def _scale(self, priorities):
    return np.power(priorities, self._config.priority_exponent)

  def insert_batch(self, items: Sequence[Any], priorities: Optional[Sequence[Optional[float]]] = None) -> None:
    priorities = priorities if priorities is not None else [None] * len(items)
    for item, priority in zip(items, priorities):
      self.insert(item, priority)

  def sample(self, batch_size: int) -> ReplayBatch:
    """Samples a batch; raises RuntimeError when the table cannot serve it yet."""
    with self._lock:
      if not self.can_sample(batch_size):
        raise RuntimeError(f"replay table '{self._config.name}' holds {self._size} items; cannot sample yet")
      n = self._size
      if self._config.sampler == "fifo":
        slots = (self._fifo_start + np.arange(batch_size)) % self._config.max_size
        self._fifo_start = int((self._fifo_start + batch_size) % self._config.max_size)
        self._size -= batch_size
        probabilities = np.ones(batch_size)
      else:
        # Non-fifo tables fill slots from 0 before the ring wraps, so the live slots are 0 .. n-1.
        if self._config.sampler == "uniform":
          slots = self._rng.integers(0, n, batch_size)
          probabilities = np.full(batch_size, 1.0 / n)
        else:  # proportional: P(i) = p_i^α / Σ_k p_k^α (Schaul et al. 2016, eq. 1), by inverting the CDF
          cumulative = np.cumsum(self._scaled[:n])
          total = cumulative[-1]
          slots = np.minimum(np.searchsorted(cumulative, self._rng.uniform(0.0, total, batch_size), side="right"), n - 1)
          probabilities = self._scaled[slots] / total
      data = tree.map_structure(lambda buf: buf[slots], self._storage)  # fancy indexing copies
      return ReplayBatch(keys=self._keys[slots], probabilities=probabilities,
                         table_size=np.full(batch_size, n, np.int64), data=data)

  def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
    with self._lock:
      keys = np.asarray(keys, np.uint64)
      priorities = np.asarray(priorities, np.float64)
      slots = ((keys - 1) % self._config.max_size).astype(np.int64)
      still_stored = self._keys[slots] == keys
      self._scaled[slots[still_stored]] = self._scale(priorities[still_stored])
      if priorities.size:
        self._max_priority = max(self._max_priority, float(priorities.max()))

  def as_iterator(self, batch_size: int) -> Iterator[ReplayBatch]:
    while True:
      yield self.sample(batch_size)
