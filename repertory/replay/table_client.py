"""Writers and samplers for a native replay table held by another node.

`table` is anything with the replay node's methods (`insert_batch`, `sample_batches`, `update_priorities`):
the replay service itself under the thread launcher, or a proxy whose calls are Ray remote calls. A writer
sends one call per chunk of items, not one per item. A sampler can ask for several batches per call and keep
several calls in flight, as Reverb's sampler keeps samples in flight: a round trip to a served table (~1.7 ms
through Ray on this CPU, BUILD_NOTES.md) then costs once per several batches and overlaps with the table's
work.
"""

import queue
import threading
import time
from typing import Any, List, Optional, Sequence

import numpy as np

from repertory.replay.table import FrameLeaves
from repertory.replay.types import ReplayBatch
from repertory.utils.prefetch import put_until_stopped


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
  """An iterator of `ReplayBatch`es from a table node, with priority write-back.

  Each call asks for up to `batches_per_call` batches (`sample_batches`: the extra ones only where the rate
  limiter grants them at once, so the limiter sees what it would see from single batches). With
  `calls_in_flight` > 1, that many daemon threads call the table at the same time and hand the batches
  over through a queue; `__next__` then waits at most `timeout_s` and raises TimeoutError, and an error
  other than a timeout ends the threads and reaches the consumer. Priority updates then go to the table
  through one more thread, in the order given. Batches in flight were drawn before the latest priority
  updates, as with Reverb's samples in flight.
  """

  def __init__(self, table: Any, batch_size: int, timeout_s: float = 60.0, batches_per_call: int = 1,
               calls_in_flight: int = 1, frames_first: bool = False):
    if batches_per_call < 1 or calls_in_flight < 1:
      raise ValueError(f"batches_per_call and calls_in_flight must be >= 1, got {batches_per_call}, {calls_in_flight}")
    self._table = table
    self._batch_size = batch_size
    self._timeout_s = timeout_s
    self._batches_per_call = batches_per_call
    self._ready: "queue.Queue[Any]" = queue.Queue(maxsize=batches_per_call * calls_in_flight)
    self._stop = threading.Event()
    self._error: Optional[BaseException] = None  # what ended the threads (`_fail`)
    self._threads = [threading.Thread(target=self._fill, name=f"replay-sampler-{i}", daemon=True)
                     for i in range(calls_in_flight)] if calls_in_flight > 1 else []
    self._updates: "queue.Queue[Any]" = queue.Queue(maxsize=calls_in_flight)
    if self._threads:
      self._threads.append(threading.Thread(target=self._write, name="replay-priorities", daemon=True))
    self._started = False
    self._frames_first = frames_first  # stacked frames come [B, K, H, W]; `frame_leaves()` marks them
    self.frame_leaves = FrameLeaves(table, frames_first)

  def _call(self) -> List[Any]:
    return list(self._table.sample_batches(self._batch_size, self._batches_per_call, self._timeout_s,
                                           frames_first=self._frames_first))

  def _start(self) -> None:
    """Starts the threads on first use (a sampler built but never used holds no call in flight)."""
    if not self._started:
      self._started = True
      for thread in self._threads:
        thread.start()

  def _fill(self) -> None:
    while not self._stop.is_set():
      try:
        batches = self._call()
      except TimeoutError:  # rate-limited: call again; the consumer's own wait times out meanwhile
        continue
      except BaseException as e:  # the node died or the table closed: the consumer re-raises it
        self._fail(e)
        return
      for batch in batches:
        if not put_until_stopped(self._ready, batch, self._stop):
          return

  def __iter__(self):
    return self

  def __next__(self) -> ReplayBatch:
    if not self._threads:
      if self._ready.empty():
        for batch in self._call():  # TimeoutError while rate-limited
          self._ready.put_nowait(batch)
      return self._ready.get_nowait()
    self._start()
    deadline = time.monotonic() + self._timeout_s
    while self._error is None:
      try:
        return self._ready.get(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
      except queue.Empty:
        if time.monotonic() >= deadline:
          raise TimeoutError(f"replay served no batch within {self._timeout_s:g} s") from None
    raise self._error

  def _fail(self, error: BaseException) -> None:
    """Ends the threads; `error` is raised by every later `__next__` and `update_priorities`."""
    self._error = self._error or error
    self._stop.set()

  def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
    """Writes priorities back: at once, or with calls in flight through a writer thread in call order, so
    the learner does not wait a round trip per update (an error of the writer is raised here or by
    `__next__`, as the samplers' errors are)."""
    update = (np.asarray(keys), np.asarray(priorities))
    if not self._threads:
      self._table.update_priorities(*update)
      return
    self._start()
    # A full queue drains as fast as the writer's (bounded) calls return; a stopped sampler drops the update.
    if self._error is None and put_until_stopped(self._updates, update, self._stop):
      return
    if self._error is not None:
      raise self._error

  def _write(self) -> None:
    while not (self._stop.is_set() and self._updates.empty()):
      try:
        update = self._updates.get(timeout=0.1)
      except queue.Empty:
        continue
      try:
        self._table.update_priorities(*update)
      except BaseException as e:
        self._fail(e)
        return
      finally:
        self._updates.task_done()

  def flush(self, timeout_s: float) -> bool:
    """Waits, `timeout_s` at most, until the priority updates given so far are written; whether they are."""
    deadline = time.monotonic() + timeout_s
    while self._updates.unfinished_tasks and self._error is None and not self._stop.is_set():
      if time.monotonic() >= deadline:
        return False
      time.sleep(0.001)
    return not self._updates.unfinished_tasks

  def close(self) -> None:
    """Stops the threads after their current call (each call ends within its timeout); the writer first
    sends the priority updates it holds."""
    self._stop.set()
