"""Background prefetching of batches (optionally onto the accelerator) with bounded waits."""

import queue
import threading
from typing import Any, Callable, Iterator, Optional


class PrefetchTimeout(TimeoutError):
  """No batch arrived within the timeout."""


def put_until_stopped(into: "queue.Queue[Any]", item: Any, stop: threading.Event, poll_s: float = 0.1) -> bool:
  """Puts `item` into `into` once there is room; False when `stop` was set first (a full queue never hangs a
  producer whose consumer is gone)."""
  while not stop.is_set():
    try:
      into.put(item, timeout=poll_s)
      return True
    except queue.Full:
      continue
  return False


class _End:
  def __init__(self, error: Optional[BaseException]):
    self.error = error


class Prefetcher:
  """Pulls items from `source` in a daemon thread, applies `transform`, keeps `buffer_size` ready.
  `frame_leaves` (a replay sampler's) is handed on to the consumer as the iterator's own."""

  def __init__(self, source: Iterator[Any], buffer_size: int = 2,
               transform: Optional[Callable[[Any], Any]] = None, timeout_s: float = 60.0,
               frame_leaves: Optional[Callable[[], Any]] = None):
    self._source = source
    self.frame_leaves = frame_leaves or (lambda: None)
    self._transform = transform or (lambda x: x)
    self._queue: "queue.Queue[Any]" = queue.Queue(maxsize=buffer_size)
    self._timeout_s = timeout_s
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._fill, name="prefetch", daemon=True)
    self._thread.start()

  def _fill(self) -> None:
    error = None
    try:
      for item in self._source:
        if not put_until_stopped(self._queue, self._transform(item), self._stop) or self._stop.is_set():
          return
    except BaseException as e:  # handed to the consumer, which re-raises it
      error = e
    self._queue.put(_End(error))

  def ready(self, count: int = 1) -> bool:
    """Whether `count` batches are waiting, i.e. the consumer will not block for them."""
    return self._queue.qsize() >= count

  def __iter__(self):
    return self

  def __next__(self) -> Any:
    try:
      item = self._queue.get(timeout=self._timeout_s)
    except queue.Empty:
      raise PrefetchTimeout(f"no batch within {self._timeout_s:.0f} s") from None
    if isinstance(item, _End):
      self._stop.set()
      if item.error is not None:
        raise item.error
      raise StopIteration
    return item

  def close(self) -> None:
    self._stop.set()
