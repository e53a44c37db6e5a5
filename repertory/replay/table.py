"""The native replay table: numpy ring buffers, a sampler, a rate limiter and checkpoints.

Needs neither TensorFlow nor Reverb and keeps the meaning of the project's Reverb tables: samplers
"prioritized" (proportional, Schaul et al. 2016, arXiv 1511.05952, eq. 1), "uniform" and "fifo" (a
queue: each item handed out once, oldest first); the oldest item is removed first when the table is full;
the rate limiter is Reverb's MinSize, SampleToInsertRatio or Queue (see `rate_limiter`). Item `key`s count
from 1 and map to ring slot (key − 1) mod max_size.

(Over 300 lines on purpose: the ring, sum tree, limiter counters and storage change under one lock, and
`checkpoint` / `restore` read and write exactly that state, so they stay beside it.)
"""

import dataclasses
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tree

from repertory.errors import ConfigError
from repertory.replay import table_checkpoint
from repertory.replay.config import TableConfig
from repertory.replay.rate_limiter import RateLimiter, ReplayClosed, check_timeout
from repertory.replay.storage import Storage
from repertory.replay.sum_tree import SumTree, last_occurrences
from repertory.replay.types import ReplayBatch


def make_rate_limiter(config: TableConfig, rate_limited: bool = True) -> RateLimiter:
  """The limiter of a table: MinSize, SampleToInsertRatio or Queue as in the Reverb backend."""
  if not rate_limited:
    return RateLimiter(config.min_size_to_sample, name=config.name)
  if config.sampler == "fifo":
    return RateLimiter(config.min_size_to_sample, max_size=config.max_size, queue=True, name=config.name)
  if config.samples_per_insert is None:
    return RateLimiter(config.min_size_to_sample, name=config.name)
  return RateLimiter(config.min_size_to_sample, config.samples_per_insert, config.error_buffer, name=config.name)


class Table:
  """A replay table, safe to insert into from several threads while others sample.

  With `rate_limited` (the distributed replay node) inserts and samples wait on the rate limiter, up to
  their `timeout_s`. Without it (one process acting and learning in turn, where a wait would never end)
  only the minimum size applies: inserts never wait, a fifo table drops its oldest item when full, and
  `sample` raises RuntimeError at once when the table cannot serve the batch.
  """

  def __init__(self, config: TableConfig, seed: int = 0, rate_limited: bool = True):
    self._config = config
    self._rate_limited = rate_limited
    self._limiter = make_rate_limiter(config, rate_limited)
    self._lock = self._limiter.condition
    self._rng = np.random.default_rng(seed)
    self._template = None  # the item structure with None leaves, known from the first insert
    self._storage: Optional[Storage] = None  # one column per leaf, allocated on the first insert
    self._priorities = np.zeros(config.max_size, np.float64)  # as given, before the exponent
    self._tree = SumTree(config.max_size) if config.sampler == "prioritized" else None
    self._keys = np.zeros(config.max_size, np.uint64)
    self._next_key = 1
    self._head = 1  # the oldest stored key; stored keys are head .. next_key − 1
    self._max_priority = 1.0

  @property
  def config(self) -> TableConfig:
    return self._config

  @property
  def limiter(self) -> RateLimiter:
    return self._limiter

  def nbytes(self) -> int:
    """Memory held by the stored items (their columns, and the shared frames when deduplicated)."""
    with self._lock:
      return self._storage.nbytes() if self._storage is not None else 0

  def size(self) -> int:
    with self._lock:
      return self._next_key - self._head

  def can_sample(self, batch_size: int) -> bool:
    """Whether `sample(batch_size)` would return now without waiting."""
    with self._lock:
      return not self._limiter.closed and self._servable(batch_size)

  def _servable(self, n: int) -> bool:
    distinct = self._config.sampler != "fifo" or self._next_key - self._head >= n
    return distinct and self._limiter.can_sample(n)

  def insert(self, item: Any, priority: Optional[float] = None, timeout_s: float = 60.0) -> None:
    """Inserts one item; priority None means the largest priority given to `update_priorities` so far
    (initially 1), so that new items are sampled soon (Schaul et al. 2016, Algorithm 1).

    Raises:
      TimeoutError: the limiter held the insert back for `timeout_s`.
      ReplayClosed: the table was closed.
    """
    self.insert_batch([item], None if priority is None else [priority], timeout_s)

  def insert_batch(self, items: Sequence[Any], priorities: Optional[Sequence[Optional[float]]] = None,
                   timeout_s: float = 60.0) -> int:
    """Inserts items in order, in pieces as large as the limiter allows (one wait and write per piece).

    Returns:
      How many of `items` went in: all, or the first ones when the limiter held the rest back for
      `timeout_s`.

    Raises:
      TimeoutError: the limiter let none in within `timeout_s`.
      ReplayClosed: the table was closed.
    """
    items = list(items)
    timeout_s = check_timeout(timeout_s)
    if not items:
      return 0
    given = [None] * len(items) if priorities is None else list(priorities)
    if len(given) != len(items):
      raise ValueError(f"replay table '{self._config.name}': {len(items)} items but {len(given)} priorities")
    _check_priorities(np.array([p for p in given if p is not None], np.float64))
    values = np.array([np.nan if p is None else p for p in given], np.float64)  # NaN: the max priority
    for item in items[1:]:
      tree.assert_same_structure(items[0], item)
    flat = [tree.flatten(item) for item in items]
    columns = [np.stack([np.asarray(leaves[j]) for leaves in flat]) for j in range(len(flat[0]))]
    deadline = time.monotonic() + timeout_s
    with self._lock:
      self._allocate(items[0], columns)
      done = 0
      while done < len(items):
        wanted = min(len(items) - done, self._config.max_size)
        if not self._rate_limited:
          granted = self._limiter.try_insert(wanted)
        else:
          try:
            granted = self._limiter.await_insert(wanted, max(0.0, deadline - time.monotonic()), partial=True)
          except TimeoutError:
            if done:
              return done
            raise
        self._write(columns, values, done, done + granted)
        done += granted
    return done

  def _allocate(self, item: Any, columns: Sequence[np.ndarray]) -> None:
    if self._storage is None:
      self._template = tree.map_structure(lambda _: None, item)
      self._storage = Storage(self._config.max_size, columns, self._config.deduplicate_frames)
      return
    tree.assert_same_structure(self._template, tree.map_structure(lambda _: None, item))
    for j, (stored, column) in enumerate(zip(self._storage.columns, columns)):
      if column.shape[1:] != tuple(stored.leaf_shape):
        raise ValueError(f"replay table '{self._config.name}': item leaf {j} has shape {column.shape[1:]}, "
                         f"the table stores {tuple(stored.leaf_shape)}")

  def _write(self, columns: Sequence[np.ndarray], values: np.ndarray, start: int, stop: int) -> None:
    keys = np.arange(self._next_key, self._next_key + stop - start, dtype=np.uint64)
    slots = ((keys - 1) % self._config.max_size).astype(np.int64)  # distinct: stop − start ≤ max_size
    self._storage.write(slots, [column[start:stop] for column in columns], occupied=self._keys[slots] != 0)
    priorities = values[start:stop]
    priorities = np.where(np.isnan(priorities), self._max_priority, priorities)
    self._priorities[slots] = priorities
    if self._tree is not None:
      self._tree.set(slots, self._scale(priorities))
    self._keys[slots] = keys
    self._next_key += stop - start
    evicted = max(0, self._next_key - self._head - self._config.max_size)
    if evicted:
      self._head += evicted
      self._limiter.record_delete(evicted)

  def _scale(self, priorities: np.ndarray) -> np.ndarray:
    return np.power(priorities, self._config.priority_exponent)

  def sample(self, batch_size: int, timeout_s: float = 60.0, frames_first: bool = False) -> ReplayBatch:
    """Samples a batch (with replacement, or for fifo the oldest items, removing them).

    A batch larger than a samples-per-insert limiter can ever grant at once (2·error_buffer −
    samples_per_insert) is granted in pieces, each drawn from the table as it is then; a timeout then
    drops the pieces drawn.

    Raises:
      TimeoutError: the limiter held samples back for `timeout_s`.
      RuntimeError: without rate limiting, the table cannot serve the batch now.
      ReplayClosed: the table was closed.
    """
    if batch_size < 1:
      raise ValueError(f"replay table '{self._config.name}': batch size must be >= 1, got {batch_size}")
    timeout_s = check_timeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    with self._lock:
      if not self._rate_limited:
        if not self._limiter.closed and not self._servable(batch_size):
          raise RuntimeError(f"replay table '{self._config.name}' holds {self._next_key - self._head} items; "
                             f"cannot sample a batch of {batch_size} yet")
        self._limiter.try_sample(batch_size)
        return self._draw(batch_size, frames_first)
      partial = batch_size > self._limiter.max_atomic_sample
      if partial and self._limiter.queue:
        raise ConfigError(f"replay table '{self._config.name}' can never fill a batch of {batch_size}: "
                          f"max_size {self._config.max_size}")
      pieces, done = [], 0
      while done < batch_size:
        granted = self._limiter.await_sample(batch_size - done, max(0.0, deadline - time.monotonic()), partial)
        pieces.append(self._draw(granted, frames_first))
        done += granted
    if len(pieces) == 1:
      return pieces[0]
    return tree.map_structure(lambda *xs: np.concatenate(xs), *pieces)

  def sample_batches(self, batch_size: int, max_batches: int, timeout_s: float = 60.0,
                     frames_first: bool = False) -> List[ReplayBatch]:
    """Between 1 and `max_batches` batches: the first as `sample` gives it (waiting up to `timeout_s`), each
    further one only while the rate limiter grants it at once, so the call never waits longer than for one
    batch and the limiter sees the same samples as from that many `sample` calls. A table served by another
    process answers k batches in one round trip instead of k (`table_client.TableSampler`). `frames_first` as
    for `sample`."""
    if max_batches < 1:
      raise ValueError(f"replay table '{self._config.name}': max_batches must be >= 1, got {max_batches}")
    batches = [self.sample(batch_size, timeout_s, frames_first)]
    with self._lock:
      while (len(batches) < max_batches and not self._limiter.closed and self._servable(batch_size)
             and self._limiter.try_sample(batch_size)):
        batches.append(self._draw(batch_size, frames_first))
    return batches

  def _draw(self, n: int, frames_first: bool = False) -> ReplayBatch:
    size = self._next_key - self._head
    if self._config.sampler == "fifo":
      slots = ((np.arange(self._head, self._head + n, dtype=np.uint64) - 1) % self._config.max_size).astype(np.int64)
      self._head += n
      self._limiter.record_delete(n)
      probabilities = np.ones(n)
    elif self._tree is None or self._tree.total() <= 0.0:  # uniform, or every priority zero
      slots = self._rng.integers(0, size, n)  # non-fifo tables fill slots from 0, so 0 .. size−1 are live
      probabilities = np.full(n, 1.0 / size)
    else:  # P(i) = p_i^α / Σ_k p_k^α (Schaul et al. 2016, eq. 1)
      total = self._tree.total()
      slots = self._tree.find(self._rng.uniform(0.0, total, n))
      probabilities = self._tree.get(slots) / total
    data = tree.unflatten_as(self._template, self._storage.read(slots, frames_first))
    return ReplayBatch(keys=self._keys[slots], probabilities=probabilities,
                       table_size=np.full(n, size, np.int64), data=data)

  def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
    """Sets the priorities of the items still stored (other keys are ignored; the last of repeats wins)."""
    keys = np.asarray(keys, np.uint64).reshape(-1)
    priorities = np.asarray(priorities, np.float64).reshape(-1)
    if keys.shape != priorities.shape:
      raise ValueError(f"replay table '{self._config.name}': {keys.size} keys but {priorities.size} priorities")
    _check_priorities(priorities)
    with self._lock:
      if priorities.size:
        self._max_priority = max(self._max_priority, float(priorities.max()))
      stored = (keys >= self._head) & (keys < self._next_key)
      keys, priorities = keys[stored], priorities[stored]
      last = last_occurrences(keys)
      slots = ((keys[last] - 1) % self._config.max_size).astype(np.int64)
      self._priorities[slots] = priorities[last]
      if self._tree is not None:
        self._tree.set(slots, self._scale(priorities[last]))

  def as_iterator(self, batch_size: int, timeout_s: float = 60.0, frames_first: bool = False) -> "TableBatches":
    """Batches for ever; ends when the table is closed. With `frames_first` the stacked-frame leaves come as
    [B, K, H, W] (`FrameStore.gather`), and the iterator's `frame_leaves()` says which leaves those are."""
    return TableBatches(self, batch_size, check_timeout(timeout_s), frames_first)

  def frame_leaves(self) -> Any:
    """The item structure with True at the leaves kept as frames (read frames-first on request), else False;
    None before the first insert."""
    if self._storage is None:
      return None
    return tree.unflatten_as(self._template, self._storage.frame_columns())

  def close(self) -> None:
    """Releases every blocked insert and sample (they raise `ReplayClosed`), and all later ones."""
    self._limiter.close()

  def checkpoint(self, directory: str, tags: Optional[Dict[str, Any]] = None) -> str:
    """Writes the table (items, priorities, limiter counters, random state) to `directory`, atomically, with
    `tags` (JSON values: what the caller saved it with) in its meta.json.

    Returns:
      The checkpoint directory.
    """
    arrays, meta = self.state()
    return table_checkpoint.write(directory, arrays, dict(meta, tags=dict(tags or {})))

  def state(self) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """(arrays, meta): the table's whole state, as `checkpoint` writes it."""
    with self._lock:
      filled = min(self._next_key - 1, self._config.max_size)
      columns = self._storage.columns if self._storage is not None else []
      if any(np.dtype(column.dtype).hasobject for column in columns):
        raise ValueError(f"replay table '{self._config.name}': cannot checkpoint items with non-numeric leaves")
      counters = [self._next_key, self._head, *self._limiter.state().values()]
      arrays = {"keys": self._keys[:filled].copy(), "priorities": self._priorities[:filled].copy(),
                "counters": np.array(counters, np.int64), "max_priority": np.float64(self._max_priority)}
      if self._storage is not None:
        arrays.update(self._storage.state(filled))
      meta = {"config": dataclasses.asdict(self._config), "allocated": self._storage is not None,
              "structure": table_checkpoint.encode_structure(self._template), "num_leaves": len(columns),
              "layout": self._storage.layout() if self._storage is not None else [],
              "rng": self._rng.bit_generator.state}
      return arrays, meta

  @classmethod
  def restore(cls, directory: str, config: TableConfig, seed: Optional[int] = None, rate_limited: bool = True,
              example_item: Any = None) -> "Table":
    """A table restored from `checkpoint(directory)`.

    Args:
      directory: written by `checkpoint`.
      config: must have the stored sampler and max_size; the other fields may change.
      seed: None continues the stored random stream; a number starts a fresh one.
      rate_limited: as for the constructor.
      example_item: an item whose structure replaces the stored one (needed only when a stored
        namedtuple type can no longer be imported).

    Raises:
      ConfigError: no native checkpoint there, one for another sampler or size, or corrupt files.
    """
    directory = os.path.abspath(os.fspath(directory))
    meta, arrays = table_checkpoint.read(directory)
    table = cls(config, 0 if seed is None else seed, rate_limited)
    table.load_state(arrays, meta, directory, keep_random_state=seed is None, example_item=example_item)
    return table

  def load_state(self, arrays: Dict[str, np.ndarray], meta: Dict[str, Any], where: str,
                 keep_random_state: bool = True, example_item: Any = None) -> None:
    """Replaces this (fresh) table's contents by `state()`'s; `where` names the source in errors."""
    config = self._config
    stored = meta.get("config", {})
    for field in ("sampler", "max_size"):
      if stored.get(field) != getattr(config, field):
        raise ConfigError(f"replay checkpoint {where} holds a table with {field} {stored.get(field)!r}; "
                          f"the config asks for {getattr(config, field)!r}")
    try:
      num_leaves = int(meta["num_leaves"])
      leaf_arrays = [v for k, v in arrays.items() if k.startswith("leaf_")]
      next_key, head, inserts, samples, deletes = (int(c) for c in arrays["counters"])
      filled = min(next_key - 1, config.max_size)
      if (any(len(a) != filled for a in leaf_arrays + [arrays["keys"], arrays["priorities"]])
          or not 1 <= head <= next_key <= head + config.max_size or inserts - deletes != next_key - head):
        raise ValueError("inconsistent sizes")
      self._max_priority = float(arrays["max_priority"])
      if keep_random_state:
        self._rng.bit_generator.state = meta["rng"]
    except (KeyError, ValueError, TypeError) as e:
      raise ConfigError(f"replay checkpoint {where} is corrupt ({type(e).__name__}: {e})") from None
    if meta.get("allocated"):
      self._template = table_checkpoint.decode_structure(meta.get("structure"), example_item, num_leaves, where)
      try:
        self._storage = Storage.restore(config.max_size, meta["layout"], arrays, filled)
      except (KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"replay checkpoint {where} is corrupt ({type(e).__name__}: {e})") from None
    self._next_key, self._head = next_key, head
    self._keys[:filled] = arrays["keys"]
    self._priorities[:filled] = arrays["priorities"]
    if self._tree is not None and filled:
      self._tree.set(np.arange(filled), self._scale(arrays["priorities"]))
    self._limiter.restore_state({"inserts": inserts, "samples": samples, "deletes": deletes})


def _check_priorities(priorities: np.ndarray) -> None:
  if priorities.size and (not np.all(np.isfinite(priorities)) or priorities.min() < 0.0):
    raise ValueError("replay priorities must be finite and >= 0")


class FrameLeaves:
  """`frame_leaves()` of batches read from `table` (a `Table`, or a node serving one): which leaves of a batch's
  data are frames-first [B, K, H, W] (`Table.frame_leaves`), asked once the table holds items (its leaves' kinds
  never change after); None for batches read stacked."""

  def __init__(self, table: Any, frames_first: bool):
    self._table, self._frames_first, self._marks = table, frames_first, None

  def __call__(self) -> Any:
    if self._frames_first and self._marks is None:
      self._marks = self._table.frame_leaves()
    return self._marks


class TableBatches:
  """`Table.as_iterator`: the table's batches, one `sample` per `next`, until the table is closed."""

  def __init__(self, table: Table, batch_size: int, timeout_s: float, frames_first: bool):
    self._table, self._batch_size, self._timeout_s = table, batch_size, timeout_s
    self.frames_first = frames_first
    self.frame_leaves = FrameLeaves(table, frames_first)

  def __iter__(self) -> "TableBatches":
    return self

  def __next__(self) -> ReplayBatch:
    try:
      return self._table.sample(self._batch_size, self._timeout_s, self.frames_first)
    except ReplayClosed:
      raise StopIteration from None
