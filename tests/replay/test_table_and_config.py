"""The replay table without rate limiting (as `sync` runs use it) and table-config validation."""

import numpy as np
import pytest

from repertory.errors import ConfigError
from repertory.replay.config import TableConfig, validate_table_config
from repertory.replay.table import Table
from repertory.replay.types import importance_weights


def _fill(table, n):
  for i in range(n):
    table.insert({"x": np.float32(i)}, priority=1.0)


def test_prioritized_sampling_follows_priority_exponent():
  table = Table(TableConfig(max_size=10, min_size_to_sample=2, priority_exponent=0.5), seed=0, rate_limited=False)
  _fill(table, 2)
  batch = table.sample(2)
  table.update_priorities(batch.keys, np.where(batch.data["x"] == 0, 9.0, 1.0))  # p ∝ 9^0.5 : 1^0.5 = 3 : 1
  draws = np.concatenate([table.sample(64).data["x"] for _ in range(50)])
  assert abs(np.mean(draws == 0) - 0.75) < 0.03
  batch = table.sample(4)
  np.testing.assert_allclose(batch.probabilities, np.where(batch.data["x"] == 0, 0.75, 0.25))


def test_ring_buffer_overwrites_oldest_and_ignores_stale_priority_updates():
  table = Table(TableConfig(sampler="uniform", max_size=4, min_size_to_sample=1), seed=0, rate_limited=False)
  _fill(table, 6)
  assert table.size() == 4
  assert set(np.unique(np.concatenate([table.sample(8).data["x"] for _ in range(20)]))) == {2, 3, 4, 5}
  table.update_priorities(np.array([1, 2], np.uint64), np.array([5.0, 5.0]))  # keys of evicted items


def test_fifo_samples_each_item_once_in_order():
  table = Table(TableConfig(sampler="fifo", max_size=8, min_size_to_sample=2), seed=0, rate_limited=False)
  _fill(table, 6)
  np.testing.assert_array_equal(table.sample(3).data["x"], [0, 1, 2])
  np.testing.assert_array_equal(table.sample(3).data["x"], [3, 4, 5])
  assert not table.can_sample(1)


def test_importance_weights_hand_computation():
  from repertory.replay.types import ReplayBatch
  batch = ReplayBatch(keys=np.arange(2), probabilities=np.array([0.5, 0.125]), table_size=np.array([4, 4]), data=None)
  w = importance_weights(batch, exponent=1.0)  # (4·0.5)^-1 = 0.5, (4·0.125)^-1 = 2 → normalised 0.25, 1
  np.testing.assert_allclose(w, [0.25, 1.0])


@pytest.mark.parametrize("config, batch, message", [
    (TableConfig(max_size=10, min_size_to_sample=100), 8, "can never be sampled"),
    (TableConfig(max_size=4, min_size_to_sample=2), 8, "can never fill a batch"),
    (TableConfig(sampler="lifo"), 8, "unknown sampler"),
    (TableConfig(samples_per_insert=-1.0), 8, "must be > 0"),
    (TableConfig(samples_per_insert=8.0, samples_per_insert_tolerance=2.0), 8, "would block"),
    (TableConfig(sampler="fifo", samples_per_insert=1.0), 8, "leave samples_per_insert unset"),
    (TableConfig(min_size_to_sample=0), 8, "min_size_to_sample must be >= 1"),
])
def test_invalid_configs_are_rejected_with_one_line(config, batch, message):
  with pytest.raises(ConfigError, match=message) as info:
    validate_table_config(config, batch)
  assert "\n" not in str(info.value)


def test_valid_ratio_config_builds_a_reverb_table():
  reverb_backend = pytest.importorskip("repertory.replay.reverb_backend")
  config = validate_table_config(TableConfig(samples_per_insert=8.0, min_size_to_sample=100), 32)
  table = reverb_backend.make_reverb_table(config, {"x": np.float32(0)})
  assert table.name == "replay"
