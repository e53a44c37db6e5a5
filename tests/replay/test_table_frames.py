"""A table with frame deduplication serves exactly the batches of the plain layout, on real Atari frames."""

import numpy as np
import pytest
import tree

from repertory import environments
from repertory.benchmarks.throughput_replay import write_random_policy_transitions
from repertory.replay.config import TableConfig
from repertory.replay.table import Table
from legs import one_leg

pytest.importorskip("ale_py")


def _pong_transitions(steps: int):
  """n-step transitions (n = 10) of a random policy on Pong: 84x84x4 uint8 stacks, short episodes with
  zero frames at each start."""
  items = []

  class Collect:
    def insert(self, item, priority=None):
      items.append(item)

  environment = environments.make("atari:Pong", seed=0, max_episode_steps=120)
  write_random_policy_transitions(environment, Collect(), steps)
  environment.close()
  return items


def _assert_batches_equal(a, b):
  np.testing.assert_array_equal(a.keys, b.keys)
  np.testing.assert_array_equal(a.probabilities, b.probabilities)
  for u, v in zip(tree.flatten(a.data), tree.flatten(b.data)):
    assert u.dtype == v.dtype and u.shape == v.shape
    np.testing.assert_array_equal(u, v)


@pytest.fixture(scope="module")
def transitions():
  return _pong_transitions(400)


@pytest.mark.parametrize("sampler", ["prioritized", "uniform"])
def test_deduplicated_batches_equal_the_plain_layout_across_the_rings_wrap_around(transitions, sampler):
  config = TableConfig(sampler=sampler, max_size=150, min_size_to_sample=1)  # 400 items wrap the ring twice
  plain = Table(config, seed=3, rate_limited=False)
  deduplicated = Table(TableConfig(**{**config.__dict__, "deduplicate_frames": True}), seed=3, rate_limited=False)
  rng = np.random.default_rng(1)
  for start in range(0, len(transitions), 37):
    chunk = transitions[start:start + 37]
    plain.insert_batch(chunk)
    deduplicated.insert_batch(chunk)
    a, b = plain.sample(32), deduplicated.sample(32)
    _assert_batches_equal(a, b)
    new_priorities = rng.uniform(0.1, 2.0, 32)
    plain.update_priorities(a.keys, new_priorities)
    deduplicated.update_priorities(b.keys, new_priorities)
  # Each stored transition holds two 84x84x4 stacks; deduplicated, about one new frame per step remains.
  assert deduplicated.nbytes() < plain.nbytes() / 4
  live_frames = deduplicated._storage.frames.num_frames()
  assert live_frames <= 150 + 2 * 10 + 4 * 8  # items + n-step lookahead + episode-start frames


def test_deduplicated_checkpoint_round_trip(transitions, tmp_path):
  config = TableConfig(max_size=200, min_size_to_sample=1, deduplicate_frames=True)
  table = Table(config, seed=0, rate_limited=False)
  table.insert_batch(transitions[:300])
  table.checkpoint(str(tmp_path / "ckpt"))
  restored = Table.restore(str(tmp_path / "ckpt"), config, rate_limited=False)
  _assert_batches_equal(table.sample(64), restored.sample(64))
  table.insert_batch(transitions[300:])
  restored.insert_batch(transitions[300:])
  _assert_batches_equal(table.sample(64), restored.sample(64))


@one_leg(2)  # leg 1 trains frames-first DER in its group and exact-resume tests
def test_frames_first_batches_hold_the_same_frames_and_a_learner_takes_the_same_steps(transitions):
  """A table read frames-first ([B, K, H, W], one contiguous gather) hands out the plain layout's batches once
  `frames_last` puts the frames back; a DER learner fed those batches (the transpose inside its jitted update)
  ends where one fed the stacked batches does."""
  import jax
  from repertory import agents
  from repertory.agents.sgd_learner import frames_last
  from repertory.environments.specs import make_environment_spec

  config = TableConfig(sampler="prioritized", max_size=400, min_size_to_sample=1, deduplicate_frames=True)
  stacked, frames_first = Table(config, seed=5, rate_limited=False), Table(config, seed=5, rate_limited=False)
  assert frames_first.frame_leaves() is None  # nothing stored yet
  for table in (stacked, frames_first):
    table.insert_batch(transitions)
  marks = frames_first.frame_leaves()
  assert marks.observation and marks.next_observation and not marks.action and not marks.reward

  builder = agents.make_builder("der", {"batch_size": "8", "hidden_size": "16"})
  spec = make_environment_spec(environments.make("atari:Pong", seed=0))
  learners = []
  for table, first in ((stacked, False), (frames_first, True)):
    batches = table.as_iterator(8, frames_first=first)
    assert (batches.frame_leaves() is not None) == first
    learners.append(builder.make_learner(builder.make_networks(spec), spec, batches, table.update_priorities, 0))
  probe = frames_first.sample(8, frames_first=True)
  assert probe.data.observation.shape == (8, 4, 84, 84)
  _assert_batches_equal(stacked.sample(8), probe._replace(data=frames_last(probe.data, marks, np)))
  for _ in range(3):
    for learner in learners:
      learner.step()
  for a, b in zip(jax.tree.leaves(learners[0].state().params), jax.tree.leaves(learners[1].state().params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(stacked._priorities, frames_first._priorities, rtol=1e-5)  # the same priorities written


def test_a_sampler_of_a_served_table_asks_for_frames_first_and_marks_them(transitions):
  """What a `thread`/`ray` learner samples (`replay_node.make_sampler(frames_first=True)`): every batch
  frames-first, one contiguous gather on the replay's host, the same batches as stacked ones once `frames_last`
  puts the frames back, and the frame leaves marked through the learner's prefetcher."""
  from repertory.agents.sgd_learner import frames_last
  from repertory.replay.table_client import TableSampler
  from repertory.utils.prefetch import Prefetcher

  config = TableConfig(sampler="prioritized", max_size=400, min_size_to_sample=1, deduplicate_frames=True)
  tables = [Table(config, seed=5, rate_limited=False) for _ in range(3)]
  for table in tables:
    table.insert_batch(transitions)
  stacked = TableSampler(tables[0], 8, batches_per_call=2)
  frames_first = TableSampler(tables[1], 8, batches_per_call=2, frames_first=True)
  assert stacked.frame_leaves() is None
  marks = frames_first.frame_leaves()
  assert marks.observation and marks.next_observation and not marks.action
  for _ in range(4):
    probe = next(frames_first)
    assert probe.data.observation.shape == (8, 4, 84, 84) and probe.data.next_observation.shape == (8, 4, 84, 84)
    _assert_batches_equal(next(stacked), probe._replace(data=frames_last(probe.data, marks, np)))
  in_flight = TableSampler(tables[2], 8, calls_in_flight=2, frames_first=True)  # the learner node's threads
  prefetched = Prefetcher(in_flight, buffer_size=2, timeout_s=5.0, frame_leaves=in_flight.frame_leaves)
  try:
    assert next(prefetched).data.observation.shape == (8, 4, 84, 84)
    assert prefetched.frame_leaves() == marks
  finally:
    prefetched.close()
    tables[2].close()
