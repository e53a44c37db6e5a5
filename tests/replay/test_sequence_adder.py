"""SequenceAdder against hand-built streams: layout, boundaries, overlap, padding, stored state."""

import dm_env
import jax
import numpy as np
import pytest

from repertory.replay.sequence_adder import SequenceAdder, example_sequence


class ListWriter:
  def __init__(self):
    self.items = []

  def insert(self, item, priority=None):
    self.items.append(item)


def obs(k):
  return np.array([k], np.float32)


def state(k):
  return {"h": np.array([float(k)], np.float32)}


def logits(k):
  return np.array([k, -k], np.float32)


def run_episode(adder, first, length, terminal=True):
  """Observations first..first+length; reward at step k+1 = 10·(k+1); state before x_k = k."""
  adder.add_first(dm_env.restart(obs(first)), state(first))
  for k in range(first, first + length):
    o = obs(k + 1)
    if k + 1 == first + length:
      ts = dm_env.termination(10.0 * (k + 1), o) if terminal else dm_env.truncation(10.0 * (k + 1), o)
    else:
      ts = dm_env.transition(10.0 * (k + 1), o)
    adder.add(np.int32(k % 2), ts, logits(k), state(k + 1))


def test_continue_mode_masks_the_boundary_transition_and_marks_resets():
  writer = ListWriter()
  adder = SequenceAdder(writer, sequence_length=3)
  run_episode(adder, 0, 2)  # x0 x1 x2(LAST)
  assert writer.items == []  # the bootstrap observation (next episode's first) is not known yet
  run_episode(adder, 100, 4)  # x100 .. x104(LAST)
  first, second = writer.items
  np.testing.assert_array_equal(first.observation[:, 0], [0, 1, 2, 100])
  np.testing.assert_array_equal(first.mask, [1, 1, 0])
  np.testing.assert_array_equal(first.reset, [True, False, False, True])
  np.testing.assert_array_equal(first.reward, [10, 20, 0])
  np.testing.assert_array_equal(first.discount, [1, 0, 0])  # termination at x2; the dummy step
  np.testing.assert_array_equal(first.action, [0, 1, 0])
  np.testing.assert_array_equal(first.behaviour_logits, [[0, 0], [1, -1], [0, 0]])
  np.testing.assert_array_equal(first.core_state[0], [0.0])
  np.testing.assert_array_equal(second.observation[:, 0], [100, 101, 102, 103])
  np.testing.assert_array_equal(second.mask, [1, 1, 1])
  np.testing.assert_array_equal(second.reset, [True, False, False, False])
  np.testing.assert_array_equal(second.core_state[0], [100.0])


def test_truncation_keeps_discount_one_for_bootstrapping():
  writer = ListWriter()
  adder = SequenceAdder(writer, sequence_length=2)
  run_episode(adder, 0, 2, terminal=False)
  run_episode(adder, 50, 1)
  item = writer.items[0]
  np.testing.assert_array_equal(item.discount, [1, 1])
  np.testing.assert_array_equal(item.mask, [1, 1])
  np.testing.assert_array_equal(item.observation[:, 0], [0, 1, 2])  # bootstraps from the LAST observation


def test_overlap_period():
  writer = ListWriter()
  adder = SequenceAdder(writer, sequence_length=4, period=2)
  run_episode(adder, 0, 9)  # 9 transitions + the dummy terminal step = 10 steps
  run_episode(adder, 100, 1)
  starts = [int(item.observation[0, 0]) for item in writer.items]
  assert starts == [0, 2, 4, 6]
  for item in writer.items:
    start = int(item.observation[0, 0])
    np.testing.assert_array_equal(item.core_state[0], [float(start)])
  last = writer.items[-1]
  np.testing.assert_array_equal(last.observation[:, 0], [6, 7, 8, 9, 100])
  np.testing.assert_array_equal(last.mask, [1, 1, 1, 0])


def test_pad_mode_pads_the_episode_end_and_starts_a_new_grid():
  writer = ListWriter()
  adder = SequenceAdder(writer, sequence_length=3, end_of_episode="pad")
  run_episode(adder, 0, 5)  # x0..x5
  assert len(writer.items) == 2
  full, padded = writer.items
  np.testing.assert_array_equal(full.observation[:, 0], [0, 1, 2, 3])
  np.testing.assert_array_equal(full.mask, [1, 1, 1])
  np.testing.assert_array_equal(padded.observation[:, 0], [3, 4, 5, 0])
  np.testing.assert_array_equal(padded.mask, [1, 1, 0])
  np.testing.assert_array_equal(padded.discount, [1, 0, 0])
  np.testing.assert_array_equal(padded.reward, [40, 50, 0])
  np.testing.assert_array_equal(padded.reset, [False, False, False, False])
  np.testing.assert_array_equal(padded.core_state[0], [3.0])
  run_episode(adder, 100, 3)  # exactly one sequence, no padding
  assert len(writer.items) == 3
  np.testing.assert_array_equal(writer.items[2].observation[:, 0], [100, 101, 102, 103])
  np.testing.assert_array_equal(writer.items[2].reset, [True, False, False, False])


def test_pad_mode_with_overlap_writes_only_uncovered_steps():
  writer = ListWriter()
  adder = SequenceAdder(writer, sequence_length=4, period=2, end_of_episode="pad")
  run_episode(adder, 0, 6)  # sequences at 0 and 2 cover all 6 transitions
  starts = [int(item.observation[0, 0]) for item in writer.items]
  assert starts == [0, 2]
  run_episode(adder, 10, 7)  # sequences at 10, 12; then 14..16 padded
  starts = [int(item.observation[0, 0]) for item in writer.items]
  assert starts == [0, 2, 10, 12, 14]
  np.testing.assert_array_equal(writer.items[-1].mask, [1, 1, 1, 0])


def test_example_sequence_matches_written_items():
  writer = ListWriter()
  adder = SequenceAdder(writer, sequence_length=3)
  run_episode(adder, 0, 5)
  run_episode(adder, 100, 1)
  example = example_sequence(obs(0), np.int32(0), 2, state(0), 3)
  for got in writer.items:
    assert jax.tree.map(lambda x: (np.shape(x), np.asarray(x).dtype), example) == \
        jax.tree.map(lambda x: (np.shape(x), np.asarray(x).dtype), got)


def test_bad_arguments():
  with pytest.raises(ValueError):
    SequenceAdder(ListWriter(), sequence_length=3, period=4)
  with pytest.raises(ValueError):
    SequenceAdder(ListWriter(), sequence_length=3, end_of_episode="drop")
  adder = SequenceAdder(ListWriter(), sequence_length=3)
  with pytest.raises(ValueError):
    adder.add(0, dm_env.transition(0.0, obs(1)), logits(0), state(1))
