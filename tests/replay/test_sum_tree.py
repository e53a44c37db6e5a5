"""The sum tree against cumulative sums: find, set with repeated indices, rounding at the edges."""

import numpy as np
import pytest

from repertory.replay.sum_tree import SumTree


def _reference(values, targets):
  return np.searchsorted(np.cumsum(values), targets, side="right")


@pytest.mark.parametrize("capacity", [1, 2, 7, 64, 1000])
def test_find_matches_cumulative_sums_with_zeros_and_after_updates(capacity):
  rng = np.random.default_rng(capacity)
  values = rng.random(capacity) * (rng.random(capacity) > 0.3)  # about 30% zeros
  values[0] = max(values[0], 0.5)
  tree = SumTree(capacity)
  tree.set(np.arange(capacity), values)
  targets = rng.uniform(0.0, values.sum(), 5000)
  np.testing.assert_array_equal(tree.find(targets), _reference(values, targets))
  for _ in range(3):
    indices = rng.integers(0, capacity, max(1, capacity // 3))
    new = rng.random(indices.size) * (rng.random(indices.size) > 0.3)
    tree.set(indices, new)
    for i, v in zip(indices, new):  # the last write to a repeated index wins
      values[i] = v
    np.testing.assert_array_equal(tree.get(np.arange(capacity)), values)
    assert tree.total() == pytest.approx(values.sum(), rel=1e-12)
    if values.sum() > 0:
      targets = rng.uniform(0.0, values.sum(), 5000)
      np.testing.assert_array_equal(tree.find(targets), _reference(values, targets))


def test_find_with_integer_priorities_hits_every_boundary_exactly():
  values = np.array([0.0, 3.0, 0.0, 0.0, 1.0, 2.0, 0.0])
  tree = SumTree(7)
  tree.set(np.arange(7), values)
  targets = np.array([0.0, 2.5, 3.0, 3.5, 4.0, 5.99])
  np.testing.assert_array_equal(tree.find(targets), [1, 1, 4, 4, 5, 5])
  np.testing.assert_array_equal(tree.find(targets), _reference(values, targets))


def test_find_never_returns_a_zero_or_unused_leaf_at_the_edges():
  tree = SumTree(10)  # 16 leaves, 10 used
  values = np.array([0.0, 0.1, 0.2, 0.0, 0.3, 1e-300, 0.7, 0.0, 0.0, 0.0])
  tree.set(np.arange(10), values)
  total = tree.total()
  edges = np.array([-1.0, 0.0, np.nextafter(total, 0.0), total, np.nextafter(total, 2.0), 2.0 * total, 1e300])
  leaves = tree.find(edges)
  assert np.all(values[leaves] > 0.0)
  assert leaves[0] == 1 and leaves[-1] == 6
  u = np.random.default_rng(0).uniform(0.0, total, 20_000)
  assert np.all(values[tree.find(u)] > 0.0)


def test_rounding_with_tiny_and_large_values_stays_on_positive_leaves():
  rng = np.random.default_rng(1)
  values = np.where(rng.random(4096) < 0.5, 1e-12, 1e6) * (rng.random(4096) > 0.2)
  tree = SumTree(4096)
  tree.set(np.arange(4096), values)
  u = rng.uniform(0.0, tree.total(), 50_000)
  assert np.all(values[tree.find(u)] > 0.0)


def test_find_keeps_the_shape_of_its_targets():
  tree = SumTree(4)
  tree.set(np.arange(4), np.ones(4))
  assert tree.find(np.full((2, 3), 1.5)).shape == (2, 3)
  assert tree.get(np.zeros((2, 2), np.int64)).shape == (2, 2)


def test_bad_input_is_rejected():
  tree = SumTree(4)
  with pytest.raises(ValueError, match="all zero"):
    tree.find(np.array([0.0]))
  with pytest.raises(IndexError):
    tree.set(np.array([4]), np.array([1.0]))
  with pytest.raises(ValueError, match=">= 0"):
    tree.set(np.array([0]), np.array([-1.0]))
  with pytest.raises(ValueError):
    SumTree(0)


@pytest.mark.parametrize("capacity", [1, 5, 1000])
def test_one_leaf_at_a_time_gives_the_batched_path_s_sums_bit_for_bit(capacity):
  """Inserts set one leaf per call (a plain walk up the tree); the array path (here a repeated index, the last
  write winning) must leave every node equal, to the bit."""
  rng = np.random.default_rng(capacity)
  one, batched = SumTree(capacity), SumTree(capacity)
  for _ in range(3 * capacity + 20):
    leaf, value = int(rng.integers(capacity)), float(rng.uniform(0.0, 3.0) ** 3)
    one.set([leaf], [value])
    batched.set([leaf, leaf], [1.0, value])
    assert one.get(leaf) == value
  np.testing.assert_array_equal(one._nodes, batched._nodes)
  assert one.total() == pytest.approx(sum(one.get(i) for i in range(capacity)), rel=1e-12)
