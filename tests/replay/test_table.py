"""The native replay table: sampling distributions, the rate limiter at work, fifo, batching, checkpoints."""

import json
import os
import threading
import time

import numpy as np
import pytest
import tree
from scipy import stats

from repertory.errors import ConfigError
from repertory.replay.adders import Transition
from repertory.replay.config import TableConfig
from repertory.replay.rate_limiter import ReplayClosed
from repertory.replay.sequence_adder import Sequence
from repertory.replay.table import Table
from repertory.replay.types import importance_weights


def _x(i):
  return {"x": np.float32(i), "v": np.full(3, i, np.int32)}


def _sequence(i):
  return Sequence(observation=np.full((4, 2), i, np.float32), action=np.full(3, i % 4, np.int32),
                  reward=np.full(3, i, np.float32), discount=np.ones(3, np.float32), mask=np.ones(3, np.float32),
                  reset=np.zeros(4, bool), behaviour_logits=np.zeros((3, 4), np.float32),
                  core_state=(np.full(5, i, np.float32), np.full(5, -i, np.float32)))


def _assert_equal(a, b):
  tree.assert_same_structure(a, b)
  for u, v in zip(tree.flatten(a), tree.flatten(b)):
    assert u.dtype == v.dtype
    np.testing.assert_array_equal(u, v)


def test_prioritized_sampling_frequencies_follow_p_to_the_alpha():
  priorities = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 10.0])
  table = Table(TableConfig(max_size=8, min_size_to_sample=1, priority_exponent=0.7), seed=0, rate_limited=False)
  table.insert_batch([_x(i) for i in range(6)], list(priorities))
  draws = np.concatenate([table.sample(500).data["x"] for _ in range(40)]).astype(int)
  counts = np.bincount(draws, minlength=6)
  assert counts[4] == 0  # zero priority: never sampled
  expected = priorities ** 0.7 / np.sum(priorities ** 0.7)
  nonzero = priorities > 0
  assert stats.chisquare(counts[nonzero], draws.size * expected[nonzero]).pvalue > 1e-3
  batch = table.sample(16)
  np.testing.assert_allclose(batch.probabilities, expected[batch.data["x"].astype(int)])


def test_importance_weights_on_a_tiny_table_by_hand():
  table = Table(TableConfig(max_size=4, min_size_to_sample=1, priority_exponent=1.0), seed=0, rate_limited=False)
  table.insert_batch([_x(0), _x(1)], [1.0, 3.0])  # P = 1/4, 3/4; N = 2
  batch = table.sample(32)
  assert set(batch.data["x"]) == {0.0, 1.0}
  # (N·P)^-0.5 = (1/2)^-0.5 = √2 and (3/2)^-0.5 = √(2/3); normalised by the largest, √2.
  expected = np.where(batch.data["x"] == 0, 1.0, np.sqrt(1.0 / 3.0))
  np.testing.assert_allclose(importance_weights(batch, exponent=0.5), expected, rtol=1e-6)


@pytest.mark.parametrize("sampler", ["prioritized", "uniform", "fifo"])
def test_batched_inserts_equal_one_by_one_inserts(sampler):
  config = TableConfig(sampler=sampler, max_size=10, min_size_to_sample=2)
  one, batched = Table(config, seed=5, rate_limited=False), Table(config, seed=5, rate_limited=False)
  items = [Transition(np.full(2, i, np.float32), np.int32(i), np.float32(i), np.float32(1), np.zeros(2))
           for i in range(23)]
  priorities = [None if i % 3 else float(i) for i in range(23)]
  for item, priority in zip(items, priorities):
    one.insert(item, priority)
  assert batched.insert_batch(items[:4], priorities[:4]) == 4
  assert batched.insert_batch(items[4:], priorities[4:]) == 19  # larger than the table: wraps twice
  assert one.size() == batched.size() == 10
  for _ in range(3 if sampler != "fifo" else 1):
    a, b = one.sample(5), batched.sample(5)
    assert isinstance(b.data, Transition)
    _assert_equal(a, b)


def test_update_priorities_ignores_overwritten_keys_and_the_last_repeat_wins():
  table = Table(TableConfig(max_size=4, min_size_to_sample=1, priority_exponent=1.0), seed=0, rate_limited=False)
  table.insert_batch([_x(i) for i in range(6)], [1.0] * 6)  # keys 1, 2 evicted; 3..6 stored
  table.update_priorities(np.array([1, 2, 6, 6], np.uint64), np.array([100.0, 100.0, 5.0, 2.0]))
  batch = table.sample(2000)
  assert set(batch.keys.tolist()) == {3, 4, 5, 6}
  np.testing.assert_allclose(np.unique(batch.probabilities), [0.2, 0.4])  # 1, 1, 1, 2 out of 5
  assert np.all(batch.probabilities[batch.keys == 6] == 0.4)


def test_fifo_hands_each_item_out_once_in_order_across_wrap_around():
  table = Table(TableConfig(sampler="fifo", max_size=5, min_size_to_sample=1), seed=0)
  out = []
  for chunk in [range(0, 4), range(4, 5), range(5, 8), range(8, 11)]:  # at most 5 stored
    assert table.insert_batch([_x(i) for i in chunk], timeout_s=1.0) == len(chunk)
    out += table.sample(len(chunk) - 1 if len(chunk) > 1 else 1, timeout_s=1.0).data["x"].tolist()
  while table.size():
    out += table.sample(1, timeout_s=1.0).data["x"].tolist()
  assert out == list(range(11))
  assert not table.can_sample(1)


def test_fifo_blocks_inserts_when_full_and_inserts_what_fits():
  table = Table(TableConfig(sampler="fifo", max_size=5, min_size_to_sample=1), seed=0)
  assert table.insert_batch([_x(i) for i in range(3)], timeout_s=1.0) == 3
  assert table.insert_batch([_x(i) for i in range(3, 7)], timeout_s=0.05) == 2  # room for two
  with pytest.raises(TimeoutError, match="replay table 'replay'"):
    table.insert(_x(7), timeout_s=0.05)
  with pytest.raises(TimeoutError):
    Table(TableConfig(sampler="fifo", max_size=5, min_size_to_sample=1)).sample(2, timeout_s=0.05)


def test_fifo_concurrent_producers_and_consumer_see_every_item_once_in_order():
  table = Table(TableConfig(sampler="fifo", max_size=8, min_size_to_sample=1), seed=0)

  def produce():
    for start in range(0, 300, 3):
      table.insert_batch([_x(i) for i in range(start, start + 3)], timeout_s=10.0)

  producer = threading.Thread(target=produce)
  producer.start()
  out = [table.sample(4, timeout_s=10.0).data["x"] for _ in range(75)]
  producer.join(10.0)
  np.testing.assert_array_equal(np.concatenate(out), np.arange(300))


def test_unlimited_fifo_drops_its_oldest_and_refuses_short_batches_at_once():
  table = Table(TableConfig(sampler="fifo", max_size=4, min_size_to_sample=2), rate_limited=False)
  with pytest.raises(RuntimeError, match="cannot sample"):
    table.sample(1)
  table.insert_batch([_x(i) for i in range(6)])
  np.testing.assert_array_equal(table.sample(3).data["x"], [2, 3, 4])
  with pytest.raises(RuntimeError, match="holds 1 items"):
    table.sample(2)


def test_ratio_limited_table_blocks_a_fast_producer_until_the_learner_samples():
  config = TableConfig(sampler="uniform", max_size=100, min_size_to_sample=4, samples_per_insert=2.0,
                       samples_per_insert_tolerance=4.0)  # min_diff 4, max_diff 12
  table = Table(config, seed=0)
  inserted = []
  producer = threading.Thread(
      target=lambda: inserted.append(table.insert_batch([_x(i) for i in range(40)], timeout_s=10.0)))
  producer.start()
  deadline = time.monotonic() + 10.0
  while table.size() < 6 and time.monotonic() < deadline:
    time.sleep(0.01)
  producer.join(0.2)
  assert producer.is_alive() and table.size() == 6  # 6 inserts make diff 12
  for _ in range(10):
    assert table.sample(5, timeout_s=10.0).keys.shape == (5,)  # 5 ≤ 2·4 − 2 = 6: whole batches
  assert table.sample(20, timeout_s=10.0).keys.shape == (20,)  # larger than any one grant: in pieces
  producer.join(10.0)
  assert inserted == [40] and table.limiter.samples == 70  # 40 inserts allow 2·40 − 4 = 76 samples


def test_sample_with_nothing_inserted_times_out():
  table = Table(TableConfig(min_size_to_sample=1, samples_per_insert=1.0, samples_per_insert_tolerance=2.0))
  with pytest.raises(TimeoutError, match="held back"):
    table.sample(1, timeout_s=0.1)
  with pytest.raises(ConfigError, match="finite"):
    table.sample(1, timeout_s=None)


def test_close_releases_blocked_samples_and_ends_iterators():
  table = Table(TableConfig(sampler="fifo", max_size=8, min_size_to_sample=1))
  errors, iterated = [], []
  sampler = threading.Thread(target=lambda: errors.append(pytest.raises(ReplayClosed, table.sample, 2, 30.0)))
  iterator = threading.Thread(target=lambda: iterated.extend(table.as_iterator(2, timeout_s=30.0)))
  sampler.start()
  iterator.start()
  time.sleep(0.1)
  table.close()
  sampler.join(5.0)
  iterator.join(5.0)
  assert not sampler.is_alive() and not iterator.is_alive()
  assert len(errors) == 1 and iterated == []
  with pytest.raises(ReplayClosed):
    table.insert(_x(0))


def test_concurrent_inserts_and_samples_are_safe():
  table = Table(TableConfig(max_size=1000, min_size_to_sample=10), seed=0, rate_limited=True)
  stop = threading.Event()

  def learn():
    while not stop.is_set():
      if table.can_sample(8):
        batch = table.sample(8, timeout_s=1.0)
        table.update_priorities(batch.keys, np.ones(8) * 2.0)
      else:
        time.sleep(0.001)

  def act(offset):
    for i in range(0, 200, 5):
      table.insert_batch([_x(offset + i + j) for j in range(5)], timeout_s=10.0)

  learner = threading.Thread(target=learn)
  learner.start()
  actors = [threading.Thread(target=act, args=(1000 * a,)) for a in range(4)]
  for a in actors:
    a.start()
  for a in actors:
    a.join(20.0)
  stop.set()
  learner.join(5.0)
  assert table.size() == 800 and table.limiter.inserts == 800
  batch = table.sample(800)
  assert set(batch.keys.tolist()) <= set(range(1, 801))
  assert {int(x) // 1000 for x in batch.data["x"]} == {0, 1, 2, 3}
  assert np.all(batch.data["v"] == batch.data["x"][:, None])  # items never torn between threads


@pytest.mark.parametrize("sampler", ["prioritized", "uniform", "fifo"])
def test_checkpoint_round_trip_continues_the_same_samples(tmp_path, sampler):
  config = TableConfig(sampler=sampler, max_size=16, min_size_to_sample=2, priority_exponent=0.6)
  table = Table(config, seed=3)
  n = 16 if sampler == "fifo" else 20  # a ring wraps; a full queue would hold the rest back
  assert table.insert_batch([_sequence(i) for i in range(n)], [float(i % 5) for i in range(n)], timeout_s=1.0) == n
  batch = table.sample(4, timeout_s=1.0)
  table.update_priorities(batch.keys, np.array([7.0, 0.5, 3.0, 1.0]))
  path = table.checkpoint(str(tmp_path / "replay"))
  assert table.checkpoint(path) == path  # overwriting our own checkpoint is fine
  restored = Table.restore(path, config)
  assert restored.size() == table.size() and restored.limiter.state() == table.limiter.state()
  for _ in range(3):
    a, b = table.sample(3, timeout_s=1.0), restored.sample(3, timeout_s=1.0)
    assert isinstance(b.data, Sequence) and isinstance(b.data.core_state, tuple)
    _assert_equal(a, b)
    table.insert(_sequence(99), timeout_s=1.0)
    restored.insert(_sequence(99), timeout_s=1.0)
  with open(os.path.join(path, "meta.json")) as f:
    meta = json.load(f)
  assert meta["backend"] == "native" and meta["format"] == 1 and meta["config"]["sampler"] == sampler


def test_empty_table_round_trips(tmp_path):
  config = TableConfig(max_size=8, min_size_to_sample=1)
  restored = Table.restore(Table(config).checkpoint(str(tmp_path / "empty")), config, rate_limited=False)
  assert restored.size() == 0
  restored.insert(_x(1))
  assert restored.sample(2).data["x"].tolist() == [1.0, 1.0]


def _reverb_like(directory):
  os.makedirs(os.path.join(directory, "2024-01-01T00:00:00"))
  for name in ("DONE", "tables.tfrecord", "chunks.tensor", "replay.table"):
    open(os.path.join(directory, "2024-01-01T00:00:00", name), "w").close()


def test_foreign_corrupt_or_mismatched_checkpoints_raise_one_line_config_errors(tmp_path):
  config = TableConfig(max_size=8, min_size_to_sample=1)
  table = Table(config)
  table.insert_batch([_x(i) for i in range(5)])
  good = table.checkpoint(str(tmp_path / "good"))
  _reverb_like(str(tmp_path / "reverb"))
  os.makedirs(tmp_path / "empty")
  cases = [(str(tmp_path / "missing"), config, "no such directory"),
           (str(tmp_path / "empty"), config, "no native replay-table checkpoint"),
           (str(tmp_path / "reverb"), config, "looks like a Reverb checkpoint"),
           (good, TableConfig(sampler="uniform", max_size=8, min_size_to_sample=1), "sampler"),
           (good, TableConfig(max_size=16, min_size_to_sample=1), "max_size")]
  for directory, wanted, message in cases:
    with pytest.raises(ConfigError, match=message) as info:
      Table.restore(directory, wanted)
    assert "\n" not in str(info.value)
  with pytest.raises(ConfigError, match="refusing to overwrite"):
    table.checkpoint(str(tmp_path / "reverb"))
  npz = os.path.join(good, "table.npz")
  with open(npz, "rb") as f:
    data = f.read()
  with open(npz, "wb") as f:
    f.write(data[: len(data) // 2])
  with pytest.raises(ConfigError, match="corrupt"):
    Table.restore(good, config)
  with open(os.path.join(good, "meta.json"), "w") as f:
    f.write("{not json")
  with pytest.raises(ConfigError, match="corrupt"):
    Table.restore(good, config)
