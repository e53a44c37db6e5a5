"""The frame store against the plain layout: n-step transitions of stacked frames come back identical."""

import collections

import dm_env
import numpy as np
import pytest
from dm_env import specs

from repertory.replay.adders import NStepTransitionAdder
from repertory.replay.frame_store import FrameStore, is_frame_stack

STACK = 4


class ListWriter:
  def __init__(self):
    self.items = []

  def insert(self, item, priority=None):
    self.items.append(item)


def episode_observations(rng, steps, shape):
  """steps + 1 observations [*shape, STACK] stacked as the Atari wrapper does: zero frames first."""
  frames = collections.deque([np.zeros(shape, np.uint8)] * (STACK - 1), maxlen=STACK)
  observations = []
  for _ in range(steps + 1):
    frames.append(rng.integers(0, 256, shape, dtype=np.uint8))
    observations.append(np.stack(frames, axis=-1))
  return observations


def transitions(rng, lengths, n, shape=(20, 20)):
  """The n-step transitions the adder writes for episodes of the given lengths, in order."""
  writer = ListWriter()
  adder = NStepTransitionAdder(writer, n_step=n, discount=0.99)
  for steps in lengths:
    observations = episode_observations(rng, steps, shape)
    adder.add_first(dm_env.restart(observations[0]))
    for t in range(1, steps + 1):
      timestep = dm_env.termination(0.0, observations[t]) if t == steps else dm_env.transition(0.0, observations[t])
      adder.add(0, timestep)
  assert len(writer.items) == sum(lengths)
  return writer.items


def item_stacks(item):
  return np.stack([item.observation, item.next_observation])


def distinct_frames(stacks):
  return len({stack[..., k].tobytes() for stack in stacks for k in range(stack.shape[-1])})


class CollidingStore(FrameStore):
  """Every frame gets one of two keys, so lookups go through the collision chains."""

  @staticmethod
  def _key(frame_bytes):
    return frame_bytes[0] % 2


LENGTHS = [1, 2, 5, 9, 17, 40, 3, 12]


@pytest.mark.parametrize("n", [3, 10])
@pytest.mark.parametrize("store_class", [FrameStore, CollidingStore])
def test_gathers_equal_the_stored_transitions(n, store_class):
  items = transitions(np.random.default_rng(n), LENGTHS, n)
  store = store_class((20, 20), initial_capacity=8)
  refs = np.concatenate([store.add_stacks(item_stacks(item)) for item in items])
  expected = np.concatenate([item_stacks(item) for item in items])
  assert refs.shape == (2 * len(items), STACK) and refs.dtype == np.int64
  gathered = store.gather(refs)
  assert gathered.dtype == np.uint8 and gathered.flags.c_contiguous
  assert np.array_equal(gathered, expected)
  frames_first = store.gather(refs, frames_first=True)  # [B, K, H, W]: the same frames, not interleaved
  assert frames_first.shape == (2 * len(items), STACK, 20, 20) and frames_first.flags.c_contiguous
  assert np.array_equal(np.moveaxis(frames_first, 1, -1), expected)
  # One frame per observation plus the shared zero frame, against 8 frames per item in the plain layout.
  steps = sum(LENGTHS)
  assert store.num_frames() == steps + len(LENGTHS) + 1 == distinct_frames(expected)
  # Adding everything in one call shares frames within the call the same way.
  batched = store_class((20, 20), initial_capacity=8)
  assert np.array_equal(batched.gather(batched.add_stacks(expected)), expected)
  assert batched.num_frames() == store.num_frames()


@pytest.mark.parametrize("n", [3, 10])
@pytest.mark.parametrize("store_class", [FrameStore, CollidingStore])
def test_fifo_eviction_with_wraparound(n, store_class):
  capacity = 50
  items = transitions(np.random.default_rng(10 + n), LENGTHS * 3, n)
  assert len(items) > 5 * capacity
  store = store_class((20, 20), initial_capacity=4)
  ring = collections.deque()  # (refs, stacks) of the live items, oldest first.
  peak = 0
  for step, item in enumerate(items):
    stacks = item_stacks(item)
    ring.append((store.add_stacks(stacks), stacks))
    peak = max(peak, store.num_frames())
    if len(ring) > capacity:
      store.release(ring.popleft()[0])
    live = np.concatenate([stacks for _, stacks in ring])
    assert store.num_frames() == distinct_frames(live)
    assert store.num_frames() <= capacity + (len(LENGTHS) + 1) * (n + STACK) + 1
    if step % 7 == 0 or step == len(items) - 1:
      assert np.array_equal(store.gather(np.concatenate([refs for refs, _ in ring])), live)
  # Freed slots are reused before the pool grows: slots ever used = the most frames live at once.
  assert len(store.state()["pool"]) == peak
  while ring:
    store.release(ring.popleft()[0])
  assert store.num_frames() == 0


def test_identical_frames_in_unrelated_places_are_shared():
  rng = np.random.default_rng(0)
  common, other = (rng.integers(0, 256, (20, 20), dtype=np.uint8) for _ in range(2))
  a = rng.integers(0, 256, (1, 20, 20, STACK), dtype=np.uint8)
  b = rng.integers(0, 256, (1, 20, 20, STACK), dtype=np.uint8)
  a[0, ..., 2] = common
  b[0, ..., 0] = b[0, ..., 3] = common
  store = FrameStore((20, 20))
  refs_a, refs_b = store.add_stacks(a), store.add_stacks(b)
  assert refs_a[0, 2] == refs_b[0, 0] == refs_b[0, 3]
  assert store.num_frames() == 2 * STACK - 2
  store.release(refs_a)
  assert store.num_frames() == STACK - 1
  c = np.stack([other, other, a[0, ..., 0], b[0, ..., 1]], axis=-1)[None]
  refs_c = store.add_stacks(c)  # Reuses freed slots.
  assert np.array_equal(store.gather(refs_b), b)
  assert np.array_equal(store.gather(refs_c), c)
  store.release(refs_b)
  assert np.array_equal(store.gather(refs_c), c)
  assert store.num_frames() == 3


@pytest.mark.parametrize("store_class", [FrameStore, CollidingStore])
def test_random_adds_and_releases_of_recurring_frames(store_class):
  rng = np.random.default_rng(7)
  contents = rng.integers(0, 256, (12, 20, 20), dtype=np.uint8)
  store = store_class((20, 20), initial_capacity=2)
  held = []  # (refs, stacks)
  for _ in range(300):
    if held and rng.random() < 0.5:
      store.release(held.pop(int(rng.integers(len(held))))[0])
    else:
      stacks = np.moveaxis(contents[rng.integers(0, len(contents), (int(rng.integers(1, 3)), STACK))], 1, -1)
      held.append((store.add_stacks(stacks), stacks))
    live = [stacks for _, stacks in held]
    assert store.num_frames() == (distinct_frames(np.concatenate(live)) if live else 0)
    for refs, stacks in held:
      assert np.array_equal(store.gather(refs), stacks)
  assert len(store.state()["pool"]) <= len(contents)


@pytest.mark.parametrize("store_class", [FrameStore, CollidingStore])
def test_state_round_trip(tmp_path, store_class):
  items = transitions(np.random.default_rng(3), LENGTHS, 3)
  store = store_class((20, 20), initial_capacity=4)
  held = [store.add_stacks(item_stacks(item)) for item in items]
  for refs in held[:60:2]:  # Leaves free slots behind.
    store.release(refs)
  held = held[1:60:2] + held[60:]
  np.savez(tmp_path / "frames.npz", **store.state())
  with np.load(tmp_path / "frames.npz") as saved:
    restored = store_class.from_state(dict(saved))
  refs = np.concatenate(held)
  assert np.array_equal(restored.gather(refs), store.gather(refs))
  assert restored.num_frames() == store.num_frames()
  assert restored.nbytes() == pytest.approx(store.nbytes(), rel=0.05)
  # Both go on identically: same slots for the same frames, and releases free the same frames.
  more = np.concatenate([item_stacks(item) for item in transitions(np.random.default_rng(4), [6, 8], 3)])
  assert np.array_equal(restored.add_stacks(more), store.add_stacks(more))
  restored.release(refs)
  store.release(refs)
  assert restored.num_frames() == store.num_frames() == distinct_frames(more)
  for name, array in store.state().items():
    assert np.array_equal(restored.state()[name], array), name


def test_from_state_rejects_inconsistent_state():
  store = FrameStore((20, 20))
  refs = store.add_stacks(np.random.default_rng(0).integers(0, 256, (2, 20, 20, STACK), dtype=np.uint8))
  store.release(refs[:1])
  state = store.state()
  state["free"] = state["free"][1:]
  with pytest.raises(ValueError):
    FrameStore.from_state(state)


def test_atari_table_fits_in_a_gigabyte():
  items = transitions(np.random.default_rng(5), [300, 27, 450, 180, 600, 91, 352], 3, shape=(84, 84))
  store = FrameStore()
  refs = np.concatenate([store.add_stacks(item_stacks(item)) for item in items])
  expected = np.concatenate([item_stacks(item) for item in items])
  assert np.array_equal(store.gather(refs), expected)
  assert len(items) == 2000 and store.num_frames() < 1.01 * len(items)
  # Allocated bytes, pool growth slack included, and the references the table keeps.
  per_item = (store.nbytes() + refs.nbytes) / len(items)
  assert per_item * 100_000 < 1e9
  assert 2 * expected[0].nbytes / per_item > 5  # The plain layout takes 56448 bytes per item.


def test_rejects_misuse_and_changes_nothing():
  store = FrameStore((20, 20))
  stacks = np.random.default_rng(0).integers(0, 256, (1, 20, 20, STACK), dtype=np.uint8)
  with pytest.raises(ValueError):
    store.add_stacks(stacks.astype(np.int16))
  with pytest.raises(ValueError):
    store.add_stacks(stacks[0])
  with pytest.raises(ValueError):
    store.add_stacks(stacks[:, :10])
  refs = store.add_stacks(stacks)
  with pytest.raises(ValueError):
    store.release(np.concatenate([refs, refs], axis=0))
  assert np.array_equal(store.gather(refs), stacks)
  with pytest.raises(ValueError):
    store.gather(refs + 100)
  store.release(refs)
  with pytest.raises(ValueError):
    store.gather(refs)
  with pytest.raises(ValueError):
    store.release(refs)
  assert store.num_frames() == 0
  empty = store.add_stacks(np.zeros((0, 20, 20, STACK), np.uint8))
  assert empty.shape == (0, STACK) and store.gather(empty).shape == (0, 20, 20, STACK)
  store.release(empty)


def test_is_frame_stack():
  assert is_frame_stack(np.zeros((84, 84, 4), np.uint8))
  assert is_frame_stack(specs.Array((84, 84, 4), np.uint8))
  assert is_frame_stack(np.zeros((16, 20, 2), np.uint8))
  assert not is_frame_stack(np.zeros((84, 84, 1), np.uint8))
  assert not is_frame_stack(np.zeros((84, 84, 17), np.uint8))
  assert not is_frame_stack(np.zeros((84, 84, 4), np.float32))
  assert not is_frame_stack(np.zeros((8, 84, 4), np.uint8))
  assert not is_frame_stack(np.zeros((84, 84), np.uint8))
  assert not is_frame_stack(np.int32(3))
  assert not is_frame_stack(3)
