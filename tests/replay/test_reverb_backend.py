"""The Reverb backend: tables, writer, sampler and priority write-back against a real server."""

import numpy as np
import pytest

from repertory.replay.adders import Transition
from repertory.replay.config import TableConfig, validate_table_config

reverb_backend = pytest.importorskip("repertory.replay.reverb_backend")


def _item(i):
  return Transition(np.full((3,), i, np.float32), np.int32(i % 2), np.float32(i), np.float32(0.99),
                    np.full((3,), i + 1, np.float32))


@pytest.fixture
def server():
  config = validate_table_config(TableConfig(name="t", max_size=100, min_size_to_sample=4), batch_size=4)
  server = reverb_backend.ReverbReplayServer({"t": (config, _item(0))})
  yield server
  server.stop()


def test_insert_sample_round_trip(server):
  writer = reverb_backend.ReverbWriter(server.address(), "t")
  writer.insert_batch([_item(i) for i in range(8)])
  assert reverb_backend.table_size(server.address(), "t") == 8
  sampler = reverb_backend.ReverbSampler(server.address(), "t", batch_size=4, timeout_s=10)
  batch = next(sampler)
  assert batch.data.observation.shape == (4, 3)
  assert batch.keys.shape == (4,) and np.all(batch.table_size == 8)
  # every sampled item is one that was written, intact
  np.testing.assert_array_equal(batch.data.next_observation, batch.data.observation + 1)
  np.testing.assert_array_equal(batch.data.reward, batch.data.observation[:, 0])


def test_priority_write_back_shifts_sampling(server):
  writer = reverb_backend.ReverbWriter(server.address(), "t")
  writer.insert_batch([_item(i) for i in range(8)])
  sampler = reverb_backend.ReverbSampler(server.address(), "t", batch_size=4, timeout_s=10)
  keys = {}
  while len(keys) < 8:  # learn every item's key from sampled batches
    batch = next(sampler)
    keys.update(zip(batch.keys.tolist(), batch.data.reward.tolist()))
  # put almost all the mass on the item with reward 5
  priorities = np.array([100.0 if r == 5.0 else 1e-6 for r in keys.values()])
  sampler.update_priorities(np.array(list(keys), np.uint64), priorities)
  rewards = np.concatenate([next(sampler).data.reward for _ in range(40)])[-60:]  # past in-flight samples
  assert np.mean(rewards == 5.0) > 0.8


def test_sampler_times_out_instead_of_hanging(server):
  sampler = reverb_backend.ReverbSampler(server.address(), "t", batch_size=4, timeout_s=1)
  with pytest.raises(TimeoutError, match="served no batch"):
    next(sampler)
