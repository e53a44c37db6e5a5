"""The n-step transition adder against hand-computed returns and discounts."""

import dm_env
import numpy as np
import pytest

from repertory.replay.adders import NStepTransitionAdder


class ListWriter:
  def __init__(self):
    self.items = []

  def insert(self, item, priority=None):
    self.items.append(item)


def _run(rewards, discounts, n, gamma):
  """An episode with observations 0..T; the last step is LAST with discounts[-1]."""
  writer = ListWriter()
  adder = NStepTransitionAdder(writer, n_step=n, discount=gamma)
  adder.add_first(dm_env.restart(np.float32(0)))
  for t, (r, d) in enumerate(zip(rewards, discounts)):
    last = t == len(rewards) - 1
    step = dm_env.TimeStep(dm_env.StepType.LAST if last else dm_env.StepType.MID, r, d, np.float32(t + 1))
    adder.add(np.int32(t), step)
  return writer.items


def test_three_step_returns_match_hand_computation():
  g = 0.9
  items = _run([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 0.0], n=3, gamma=g)
  assert [int(i.observation) for i in items] == [0, 1, 2, 3]
  assert [int(i.action) for i in items] == [0, 1, 2, 3]
  np.testing.assert_allclose(items[0].reward, 1 + g * 2 + g * g * 3)
  np.testing.assert_allclose(items[0].discount, g ** 3)
  assert int(items[0].next_observation) == 3
  np.testing.assert_allclose(items[1].reward, 2 + g * 3 + g * g * 4)
  np.testing.assert_allclose(items[1].discount, 0.0)  # the episode terminated inside the window
  assert int(items[1].next_observation) == 4
  np.testing.assert_allclose(items[3].reward, 4.0)
  np.testing.assert_allclose(items[3].discount, 0.0)


def test_truncation_keeps_bootstrapping():
  g = 0.5
  items = _run([1.0, 1.0], [1.0, 1.0], n=5, gamma=g)  # LAST with discount 1: a time limit
  np.testing.assert_allclose(items[0].reward, 1 + g)
  np.testing.assert_allclose(items[0].discount, g ** 2)
  np.testing.assert_allclose(items[1].discount, g)
  assert int(items[0].next_observation) == 2


def test_one_step_is_plain_td():
  items = _run([5.0, 7.0, 9.0], [1.0, 1.0, 0.0], n=1, gamma=0.99)
  np.testing.assert_allclose([i.reward for i in items], [5.0, 7.0, 9.0])
  np.testing.assert_allclose([i.discount for i in items], [0.99, 0.99, 0.0])
  assert [int(i.next_observation) for i in items] == [1, 2, 3]


def test_add_before_first_is_an_error():
  adder = NStepTransitionAdder(ListWriter(), n_step=2, discount=0.9)
  with pytest.raises(ValueError, match="add_first"):
    adder.add(0, dm_env.transition(1.0, np.float32(1)))
