"""`utils.prefetch`: items in order through a background thread, the source's error passed on, bounded waits."""

import queue
import threading
import time

import pytest

from repertory.utils.prefetch import PrefetchTimeout, Prefetcher, put_until_stopped


def test_put_until_stopped_puts_when_there_is_room_and_gives_up_once_stopped():
  into, stop = queue.Queue(maxsize=1), threading.Event()
  assert put_until_stopped(into, "a", stop)
  threading.Timer(0.2, stop.set).start()
  started = time.monotonic()
  assert not put_until_stopped(into, "b", stop, poll_s=0.05)  # full until stopped
  assert 0.15 < time.monotonic() - started < 2.0 and into.get_nowait() == "a" and into.empty()


def test_items_arrive_transformed_in_order_and_the_source_error_is_raised():
  def source():
    yield from range(5)
    raise ValueError("source broke")
  prefetched = Prefetcher(source(), buffer_size=2, transform=lambda x: 10 * x, timeout_s=5)
  assert [next(prefetched) for _ in range(5)] == [0, 10, 20, 30, 40]
  with pytest.raises(ValueError, match="source broke"):
    next(prefetched)


def test_a_silent_source_times_out_and_a_closed_prefetcher_stops_its_thread():
  blocked = threading.Event()

  def source():
    yield 1
    blocked.wait(5)
    yield 2
  prefetched = Prefetcher(source(), buffer_size=1, timeout_s=0.2)
  assert next(prefetched) == 1
  with pytest.raises(PrefetchTimeout):
    next(prefetched)
  prefetched.close()
  blocked.set()
  prefetched._thread.join(timeout=2)
  assert not prefetched._thread.is_alive()
