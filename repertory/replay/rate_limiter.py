"""Rate limiters for replay tables, with the meaning of Reverb's MinSize, SampleToInsertRatio and Queue.

With `samples_per_insert` set, the limiter keeps the replay ratio (Reverb's SampleToInsertRatio):
with diff = inserts · samples_per_insert − samples and the centre c = samples_per_insert ·
min_size_to_sample, a sample is allowed while diff − 1 ≥ c − error_buffer and the table holds at least
min_size_to_sample items; an insert is allowed while diff + samples_per_insert ≤ c + error_buffer, or
while the table would still hold no more than min_size_to_sample items after it. Without it only the
minimum size applies (MinSize). A queue (FIFO) blocks inserts while full and samples while it holds fewer
items than requested or than min_size_to_sample.

The limiter owns the condition variable that the table guards its own state with, so the table's items
and the limiter's counters always change together under one lock.
"""

import math
import threading
import time
from typing import Callable, Dict, Optional

from repertory.errors import ConfigError


class ReplayClosed(RuntimeError):
  """The replay table was closed before or while a call waited on it."""


def check_timeout(timeout_s: float) -> float:
  """A finite, non-negative number of seconds (waiting forever is not allowed)."""
  if timeout_s is None or not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s) or timeout_s < 0:
    raise ConfigError(f"replay timeout must be a finite number of seconds >= 0, got {timeout_s!r}")
  return float(timeout_s)


class RateLimiter:
  """Decides when a table may insert and sample; blocks callers until it may.

  Attributes:
    condition: the lock (a `threading.Condition` on a re-entrant lock) that guards the counters and
      that the table holds while it changes its items.
  """

  def __init__(self, min_size_to_sample: int, samples_per_insert: Optional[float] = None,
               error_buffer: Optional[float] = None, max_size: Optional[int] = None, queue: bool = False,
               name: str = "replay", condition: Optional[threading.Condition] = None):
    where = f"replay table '{name}'"
    if min_size_to_sample < 1:
      raise ConfigError(f"{where}: min_size_to_sample must be >= 1, got {min_size_to_sample}")
    if queue:
      if max_size is None or max_size < 1:
        raise ConfigError(f"{where}: a queue needs max_size >= 1, got {max_size}")
      if samples_per_insert is not None:
        raise ConfigError(f"{where}: a queue samples every item once; leave samples_per_insert unset")
    if samples_per_insert is not None:
      if samples_per_insert <= 0:
        raise ConfigError(f"{where}: samples_per_insert must be > 0, got {samples_per_insert}")
      if error_buffer is None or error_buffer < max(1.0, samples_per_insert):
        raise ConfigError(f"{where}: error_buffer {error_buffer} < max(1, samples_per_insert={samples_per_insert}) "
                          "would block inserts and samples for good; raise it")
    self.name = name
    self.min_size_to_sample = int(min_size_to_sample)
    self.samples_per_insert = None if samples_per_insert is None else float(samples_per_insert)
    self.max_size = max_size
    self.queue = bool(queue)
    if self.samples_per_insert is not None:
      centre = self.samples_per_insert * self.min_size_to_sample
      self.min_diff, self.max_diff = centre - float(error_buffer), centre + float(error_buffer)
    else:
      self.min_diff, self.max_diff = -math.inf, math.inf
    self.condition = condition if condition is not None else threading.Condition(threading.RLock())
    self.inserts = self.samples = self.deletes = 0
    self._closed = False

  @property
  def closed(self) -> bool:
    return self._closed

  @property
  def size(self) -> int:
    """Items in the table: inserts minus deletes (evictions, and items a queue handed out)."""
    return self.inserts - self.deletes

  @property
  def max_atomic_sample(self) -> float:
    """The most samples that can always be granted at once: the producers can raise diff above
    max_diff − samples_per_insert, and a batch of n needs diff − n ≥ min_diff."""
    if self.queue:
      return float(self.max_size)
    if self.samples_per_insert is None:
      return math.inf
    return self.max_diff - self.min_diff - self.samples_per_insert

  def can_insert(self, n: int) -> bool:
    """Whether `n` inserts may go ahead now."""
    if self.queue:
      return self.size + n <= self.max_size
    if self.samples_per_insert is None or self.size + n <= self.min_size_to_sample:
      return True
    return (self.inserts + n) * self.samples_per_insert - self.samples <= self.max_diff

  def can_sample(self, n: int) -> bool:
    """Whether `n` samples may go ahead now."""
    if self.queue:
      return self.size >= max(self.min_size_to_sample, n)
    if self.size < self.min_size_to_sample:
      return False
    return self.samples_per_insert is None or self.inserts * self.samples_per_insert - self.samples - n >= self.min_diff

  @staticmethod
  def _allowance(n: int, allowed: Callable[[int], bool]) -> int:
    """The largest k ≤ n with allowed(k) (allowed is monotone: true up to some k, false beyond)."""
    if allowed(n):
      return n
    low, high = 0, n  # allowed(low) or low == 0; not allowed(high)
    while high - low > 1:
      middle = (low + high) // 2
      if allowed(middle):
        low = middle
      else:
        high = middle
    return low

  def try_insert(self, n: int, partial: bool = False) -> int:
    """Counts and returns the inserts allowed now: n, 0, or with `partial` as many of n as allowed."""
    return self._try(n, partial, self.can_insert, "inserts")

  def try_sample(self, n: int, partial: bool = False) -> int:
    """Counts and returns the samples allowed now: n, 0, or with `partial` as many of n as allowed."""
    return self._try(n, partial, self.can_sample, "samples")

  def _try(self, n: int, partial: bool, allowed: Callable[[int], bool], counter: str) -> int:
    if n < 1:
      raise ValueError(f"replay table '{self.name}': need a positive count, got {n}")
    with self.condition:
      if self._closed:
        raise ReplayClosed(f"replay table '{self.name}' is closed")
      granted = self._allowance(n, allowed) if partial else (n if allowed(n) else 0)
      if granted:
        setattr(self, counter, getattr(self, counter) + granted)
        self.condition.notify_all()
      return granted

  def await_insert(self, n: int, timeout_s: float, partial: bool = False) -> int:
    """Blocks until inserts are allowed (all n, or with `partial` at least one), counts and returns them.

    Raises:
      TimeoutError: none were allowed within `timeout_s`.
      ReplayClosed: the limiter was closed.
    """
    return self._await(n, timeout_s, partial, self.try_insert, "insert")

  def await_sample(self, n: int, timeout_s: float, partial: bool = False) -> int:
    """Blocks until samples are allowed (all n, or with `partial` at least one), counts and returns them.

    Raises:
      TimeoutError: none were allowed within `timeout_s`.
      ReplayClosed: the limiter was closed.
    """
    return self._await(n, timeout_s, partial, self.try_sample, "sample")

  def _await(self, n: int, timeout_s: float, partial: bool, attempt: Callable[[int, bool], int], what: str) -> int:
    timeout_s = check_timeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    with self.condition:
      while True:
        granted = attempt(n, partial)
        if granted:
          return granted
        remaining = deadline - time.monotonic()
        if remaining <= 0.0:
          raise TimeoutError(f"replay table '{self.name}': {n} {what}(s) held back by the rate limiter for "
                             f"{timeout_s:g} s ({self.describe()})")
        self.condition.wait(remaining)

  def record_delete(self, n: int) -> None:
    """Counts `n` items leaving the table (evicted, or handed out by a queue)."""
    with self.condition:
      self.deletes += int(n)
      self.condition.notify_all()

  def describe(self) -> str:
    ratio = "" if self.samples_per_insert is None else f", samples_per_insert {self.samples_per_insert:g}"
    return (f"size {self.size}, min_size_to_sample {self.min_size_to_sample}, {self.inserts} inserts, "
            f"{self.samples} samples{ratio}")

  def close(self) -> None:
    """Wakes every waiter; they and all later calls raise `ReplayClosed`."""
    with self.condition:
      self._closed = True
      self.condition.notify_all()

  def state(self) -> Dict[str, int]:
    """The counters, for checkpoints."""
    with self.condition:
      return {"inserts": self.inserts, "samples": self.samples, "deletes": self.deletes}

  def restore_state(self, state: Dict[str, int]) -> None:
    with self.condition:
      self.inserts, self.samples, self.deletes = (int(state[k]) for k in ("inserts", "samples", "deletes"))
      self.condition.notify_all()
