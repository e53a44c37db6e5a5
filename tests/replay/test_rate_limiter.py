"""The rate limiter: Reverb's MinSize, SampleToInsertRatio and Queue rules, blocking, timeouts and close."""

import threading
import time

import pytest

from repertory.errors import ConfigError
from repertory.replay.rate_limiter import RateLimiter, ReplayClosed


def _counters(limiter, inserts, samples, deletes=0):
  limiter.restore_state({"inserts": inserts, "samples": samples, "deletes": deletes})
  return limiter


def test_min_size_blocks_samples_only():
  limiter = RateLimiter(3)
  assert limiter.try_insert(1000) == 1000
  _counters(limiter, 2, 0)
  assert not limiter.can_sample(1)
  _counters(limiter, 3, 10**6)
  assert limiter.can_sample(10**6)


def test_sample_to_insert_ratio_follows_reverbs_rules():
  # samples_per_insert 2, min size 3, error buffer 2: min_diff = 6 - 2 = 4, max_diff = 6 + 2 = 8.
  limiter = RateLimiter(3, samples_per_insert=2.0, error_buffer=2.0)
  assert (limiter.min_diff, limiter.max_diff) == (4.0, 8.0)
  assert limiter.try_insert(5, partial=True) == 4  # the 4th makes diff 8; a 5th would make it 10 > 8
  assert not limiter.can_insert(1)
  assert limiter.can_sample(4) and not limiter.can_sample(5)  # diff − n ≥ 4
  assert limiter.try_sample(5) == 0 and limiter.try_sample(5, partial=True) == 4
  assert limiter.can_insert(2) and not limiter.can_insert(3)  # diff 4: 4 + 2·2 ≤ 8 < 4 + 3·2
  _counters(limiter, 2, 0)
  assert not limiter.can_sample(1)  # below min size, whatever the ratio


def test_inserts_that_keep_the_table_at_or_below_min_size_are_always_allowed():
  limiter = _counters(RateLimiter(5, samples_per_insert=1.0, error_buffer=1.0), inserts=100, samples=0, deletes=98)
  assert limiter.inserts * limiter.samples_per_insert - limiter.samples > limiter.max_diff
  assert limiter.can_insert(3) and not limiter.can_insert(4)  # size 2 + 3 ≤ 5


def test_queue_blocks_inserts_when_full_and_samples_until_enough():
  limiter = RateLimiter(2, max_size=4, queue=True)
  assert limiter.try_insert(6, partial=True) == 4
  assert not limiter.can_insert(1)
  assert limiter.can_sample(4) and not limiter.can_sample(5)
  assert limiter.try_sample(3) == 3
  limiter.record_delete(3)
  assert limiter.size == 1 and not limiter.can_sample(1)  # below min size 2
  assert limiter.can_insert(3) and not limiter.can_insert(4)


def test_largest_batch_always_grantable_at_once():
  assert RateLimiter(10, samples_per_insert=4.0, error_buffer=10.0).max_atomic_sample == 16.0  # 20 − 4
  assert RateLimiter(10, max_size=32, queue=True).max_atomic_sample == 32


def test_producer_ahead_of_the_ratio_blocks_until_a_consumer_samples():
  limiter = RateLimiter(1, samples_per_insert=1.0, error_buffer=2.0)  # max_diff 3: 3 inserts ahead at most
  done = []

  def produce():
    for _ in range(10):
      limiter.await_insert(1, timeout_s=10.0)
    done.append(True)

  producer = threading.Thread(target=produce)
  producer.start()
  deadline = time.monotonic() + 10.0
  while limiter.inserts < 3 and time.monotonic() < deadline:
    time.sleep(0.01)
  producer.join(0.2)
  assert producer.is_alive() and limiter.inserts == 3  # blocked, not finished
  samples = 0
  while samples < 10:
    samples += limiter.await_sample(1, timeout_s=10.0)
  producer.join(10.0)
  assert done and limiter.inserts == 10 and limiter.samples == 10


def test_sample_with_nothing_inserted_times_out_within_its_timeout():
  limiter = RateLimiter(1, samples_per_insert=1.0, error_buffer=2.0, name="tiny")
  start = time.monotonic()
  with pytest.raises(TimeoutError, match="replay table 'tiny'") as info:
    limiter.await_sample(1, timeout_s=0.2)
  assert 0.2 <= time.monotonic() - start < 5.0
  assert "\n" not in str(info.value)
  assert limiter.samples == 0


def test_close_wakes_every_waiter_with_replay_closed():
  limiter = RateLimiter(1, max_size=1, queue=True)
  limiter.try_insert(1)  # full: inserts wait; a sample of 2 waits for a second item
  errors = []

  def wait(call):
    try:
      call(2 if call == limiter.await_sample else 1, timeout_s=30.0)
    except ReplayClosed as e:
      errors.append(e)

  waiters = [threading.Thread(target=wait, args=(call,)) for call in [limiter.await_insert, limiter.await_sample] * 2]
  for w in waiters:
    w.start()
  time.sleep(0.1)
  limiter.close()
  for w in waiters:
    w.join(5.0)
  assert not any(w.is_alive() for w in waiters)
  assert len(errors) == 4
  with pytest.raises(ReplayClosed):
    limiter.try_insert(1)


def test_counters_round_trip_through_state():
  limiter = _counters(RateLimiter(2), 7, 3, 1)
  other = RateLimiter(2)
  other.restore_state(limiter.state())
  assert other.state() == {"inserts": 7, "samples": 3, "deletes": 1}


@pytest.mark.parametrize("kwargs, message", [
    ({"min_size_to_sample": 0}, "min_size_to_sample must be >= 1"),
    ({"min_size_to_sample": 1, "samples_per_insert": 0.0, "error_buffer": 1.0}, "must be > 0"),
    ({"min_size_to_sample": 1, "samples_per_insert": 4.0, "error_buffer": 2.0}, "would block"),
    ({"min_size_to_sample": 1, "samples_per_insert": 1.0}, "would block"),
    ({"min_size_to_sample": 1, "queue": True}, "needs max_size"),
    ({"min_size_to_sample": 1, "queue": True, "max_size": 4, "samples_per_insert": 1.0, "error_buffer": 1.0},
     "leave samples_per_insert unset"),
])
def test_bad_limiters_are_rejected_with_one_line(kwargs, message):
  with pytest.raises(ConfigError, match=message) as info:
    RateLimiter(**kwargs)
  assert "\n" not in str(info.value)


@pytest.mark.parametrize("timeout", [None, float("inf"), -1.0])
def test_waiting_for_ever_is_refused(timeout):
  with pytest.raises(ConfigError, match="finite"):
    RateLimiter(1).await_sample(1, timeout_s=timeout)
