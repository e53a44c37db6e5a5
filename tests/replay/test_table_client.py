"""Writers and samplers of a table held by another node, and the choice of replay backend."""

import threading
import time

import numpy as np
import pytest

from repertory.errors import ConfigError
from repertory.replay import backends
from repertory.replay.config import TableConfig
from repertory.replay.rate_limiter import ReplayClosed
from repertory.replay.table import Table
from repertory.replay.table_client import TableSampler, TableWriter


class CountingTable:
  """A real table that counts the calls made to it, as a remote replay node would receive them."""

  def __init__(self, table):
    self.table, self.insert_calls, self.sample_calls, self.updates = table, 0, 0, []

  def insert_batch(self, items, priorities, timeout_s):
    self.insert_calls += 1
    return self.table.insert_batch(items, priorities, timeout_s)

  def sample_batches(self, batch_size, max_batches, timeout_s, frames_first=False):
    self.sample_calls += 1
    return self.table.sample_batches(batch_size, max_batches, timeout_s, frames_first)

  def update_priorities(self, keys, priorities):
    self.updates.append(priorities.tolist())
    self.table.update_priorities(keys, priorities)


def test_writer_sends_one_call_per_flush_and_keeps_what_the_limiter_held_back():
  # 1 sample per insert, min size 2, error buffer 2: inserts stop 2 ahead of the samples taken.
  table = Table(TableConfig(sampler="uniform", max_size=100, min_size_to_sample=2, samples_per_insert=1.0,
                            samples_per_insert_tolerance=2.0))
  node = CountingTable(table)
  writer = TableWriter(node, timeout_s=0.2)
  for i in range(10):
    writer.insert({"x": np.float32(i)})
  assert node.insert_calls == 0  # inserting never calls the node
  with pytest.raises(TimeoutError):
    writer.flush()
  held = table.size()
  assert 0 < held < 10 and writer.pending() == 10 - held
  sampler = TableSampler(node, batch_size=1, timeout_s=1.0)
  for _ in range(10):
    next(sampler)
    try:
      writer.flush()
    except TimeoutError:
      continue
    break
  assert writer.pending() == 0 and table.size() == 10


def test_sampler_writes_priorities_back_to_the_table():
  table = Table(TableConfig(max_size=10, min_size_to_sample=1), seed=0)
  table.insert_batch([np.float32(i) for i in range(4)])
  sampler = TableSampler(CountingTable(table), batch_size=64, timeout_s=1.0)
  batch = next(sampler)
  keep = batch.keys[0]
  sampler.update_priorities(np.arange(1, 5, dtype=np.uint64), np.where(np.arange(1, 5) == keep, 1.0, 0.0))
  assert set(next(sampler).keys.tolist()) == {int(keep)}  # all other priorities are zero


def test_sample_batches_adds_only_batches_the_limiter_grants_at_once():
  # 1 sample per insert, min size 1, error buffer 4: min_diff −3, max_diff 5, so 5 inserts allow 8 samples.
  table = Table(TableConfig(sampler="uniform", max_size=100, min_size_to_sample=1, samples_per_insert=1.0,
                            samples_per_insert_tolerance=4.0), seed=0)
  assert table.insert_batch([np.float32(i) for i in range(10)], timeout_s=0.1) == 5
  begin = time.monotonic()
  batches = table.sample_batches(2, max_batches=10, timeout_s=5.0)
  assert time.monotonic() - begin < 1.0  # the extra batches never wait
  assert [b.keys.shape for b in batches] == [(2,)] * 4 and table.limiter.samples == 8
  with pytest.raises(TimeoutError, match="held back"):
    table.sample_batches(2, max_batches=10, timeout_s=0.1)
  with pytest.raises(ValueError, match="max_batches"):
    table.sample_batches(2, max_batches=0)


def test_sample_batches_of_a_queue_hand_out_each_item_once_in_order():
  table = Table(TableConfig(sampler="fifo", max_size=10, min_size_to_sample=1))
  table.insert_batch([np.float32(i) for i in range(10)])
  batches = table.sample_batches(3, max_batches=5, timeout_s=1.0)  # a fourth batch would need 3 of the last 1
  assert [b.data.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
  assert table.size() == 1


def test_sampler_with_calls_in_flight_delivers_every_queued_item_once_in_fewer_calls():
  table = Table(TableConfig(sampler="fifo", max_size=64, min_size_to_sample=1))
  node = CountingTable(table)
  sampler = TableSampler(node, batch_size=4, timeout_s=5.0, batches_per_call=3, calls_in_flight=2)
  writer = threading.Thread(target=lambda: [table.insert_batch([np.float32(i) for i in range(j, j + 8)], timeout_s=10.0)
                                            for j in range(0, 400, 8)])
  writer.start()
  seen = np.concatenate([next(sampler).data for _ in range(100)])
  writer.join(10.0)
  sampler.close()
  assert sorted(seen.tolist()) == list(range(400))  # each item once, none lost between the threads
  assert node.sample_calls < 100


def test_sampler_with_calls_in_flight_times_out_and_passes_a_closed_table_on():
  table = Table(TableConfig(sampler="uniform", max_size=8, min_size_to_sample=2))
  sampler = TableSampler(table, batch_size=2, timeout_s=0.2, batches_per_call=2, calls_in_flight=2)
  begin = time.monotonic()
  with pytest.raises(TimeoutError, match="no batch within"):
    next(sampler)  # nothing inserted: the wait ends, it does not hang
  assert time.monotonic() - begin < 2.0
  table.close()
  for _ in range(2):  # the error ends the threads and stays
    with pytest.raises(ReplayClosed):
      next(sampler)


def test_sampler_with_calls_in_flight_writes_priorities_back_in_order_and_passes_errors_on():
  table = Table(TableConfig(max_size=10, min_size_to_sample=1), seed=0)
  table.insert_batch([np.float32(i) for i in range(4)])
  node = CountingTable(table)
  sampler = TableSampler(node, batch_size=2, timeout_s=5.0, batches_per_call=2, calls_in_flight=2)
  keys = np.arange(1, 5, dtype=np.uint64)
  sent = [[float(i + k) for k in range(4)] for i in range(1, 30)]
  for priorities in sent:
    sampler.update_priorities(keys, np.array(priorities))
  deadline = time.monotonic() + 10.0
  while len(node.updates) < len(sent) and time.monotonic() < deadline:
    time.sleep(0.01)
  assert node.updates == sent  # every update, in the order given
  sampler.update_priorities(keys, np.array([1.0, -1.0, 1.0, 1.0]))  # the table refuses it, in the writer
  with pytest.raises(ValueError):
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
      next(sampler)
  with pytest.raises(ValueError):
    sampler.update_priorities(keys, np.ones(4))
  sampler.close()


def test_auto_takes_the_native_service_and_reverb_runs_where_it_is_installed(monkeypatch):
  monkeypatch.setattr(backends, "reverb_installed", lambda: True)
  assert backends.resolve_backend("auto", "ray") == "native"  # no port outside Ray's, which a local run keeps on loopback
  assert backends.resolve_backend("auto", "thread") == "native"
  assert backends.resolve_backend("reverb", "ray") == "reverb"
  assert backends.resolve_backend("native", "thread") == "native"
  assert backends.resolve_backend("auto", "sync") == "native"
  monkeypatch.setattr(backends, "reverb_installed", lambda: False)
  with pytest.raises(ConfigError, match="dm-reverb is not installed"):
    backends.resolve_backend("reverb", "ray")
  with pytest.raises(ConfigError, match="unknown replay backend 'tape'"):
    backends.resolve_backend("tape", "ray")
