"""Writers and samplers of a table held by another node, and the choice of replay backend."""

import numpy as np
import pytest

from repertory.errors import ConfigError
from repertory.replay import backends
from repertory.replay.config import TableConfig
from repertory.replay.table import Table
from repertory.replay.table_client import TableSampler, TableWriter


class CountingTable:
  """A real table that counts the calls made to it, as a remote replay node would receive them."""

  def __init__(self, table):
    self.table, self.insert_calls = table, 0

  def insert_batch(self, items, priorities, timeout_s):
    self.insert_calls += 1
    return self.table.insert_batch(items, priorities, timeout_s)

  def sample(self, batch_size, timeout_s):
    return self.table.sample(batch_size, timeout_s)

  def update_priorities(self, keys, priorities):
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


def test_auto_takes_reverb_only_where_it_is_installed(monkeypatch):
  monkeypatch.setattr(backends, "reverb_installed", lambda: True)
  assert backends.resolve_backend("auto", "ray") == "reverb"
  assert backends.resolve_backend("native", "thread") == "native"
  assert backends.resolve_backend("auto", "sync") == "native"
  monkeypatch.setattr(backends, "reverb_installed", lambda: False)
  assert backends.resolve_backend("auto", "ray") == "native"
  with pytest.raises(ConfigError, match="dm-reverb is not installed"):
    backends.resolve_backend("reverb", "ray")
  with pytest.raises(ConfigError, match="unknown replay backend 'tape'"):
    backends.resolve_backend("tape", "ray")
