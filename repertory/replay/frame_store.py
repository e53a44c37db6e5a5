"""Deduplicated storage of stacked-frame observations: each distinct frame is kept once.

An Atari observation stacks the last K frames on its last axis, so the observation and next observation
of consecutive n-step transitions share almost all of their frames. DQN's replay memory (Mnih et al. 2015,
Nature, Methods) and Dopamine's circular replay buffer (Castro et al. 2018, arXiv 1812.06110) store each
frame once and rebuild the stacks when sampling. They rely on the ring order of consecutive frames; a
`FrameStore` keys frames by content instead, so it serves any table (prioritised sampling, any eviction
order, n-step items, zero frames at episode starts) and gives back exactly the stacks it was given.

Items hold int64 frame references; each reference counts toward its frame, and a frame whose count drops
to zero frees its slot for reuse. Frames are looked up by `hash` of their bytes and confirmed byte by byte,
with chaining on collisions, so a lookup never confuses two frames.
"""

import sys
from typing import Any, Dict, List, Sequence

import numpy as np

_GROWTH = 4  # The pool grows by 1/_GROWTH of its size: bounded slack, amortised O(1) copies.
_INT_BYTES = sys.getsizeof(2**62)


def is_frame_stack(example_leaf: Any) -> bool:
  """Whether a leaf (an array or a spec) looks like stacked frames: uint8 [H >= 16, W >= 16, 2..16]."""
  shape = tuple(getattr(example_leaf, "shape", ()))
  dtype = getattr(example_leaf, "dtype", None)
  return (dtype is not None and np.dtype(dtype) == np.uint8 and len(shape) == 3
          and shape[0] >= 16 and shape[1] >= 16 and 2 <= shape[2] <= 16)


class FrameStore:
  """A pool of distinct frames with reference counts; stacks go in as references and come out rebuilt.

  `add_stacks` takes stacks [B, *frame_shape, K] and returns references [B, K]; `gather` rebuilds the
  stacks from any such references, C-contiguous and equal to what was added; `release` drops references
  (an evicted item releases those it was given). Not thread-safe: the owning table serialises calls under
  its own lock.
  """

  def __init__(self, frame_shape: Sequence[int] = (84, 84), dtype: Any = np.uint8, initial_capacity: int = 1024):
    if initial_capacity < 1:
      raise ValueError(f"initial_capacity must be >= 1, got {initial_capacity}")
    self._frame_shape = tuple(int(d) for d in frame_shape)
    self._dtype = np.dtype(dtype)
    self._pool = np.zeros((int(initial_capacity),) + self._frame_shape, self._dtype)
    self._refcount = np.zeros(int(initial_capacity), np.int64)
    self._keys = np.zeros(int(initial_capacity), np.int64)  # The content key of each used slot.
    self._size = 0  # Slots [0, _size) have been used; the others were never written.
    self._free: List[int] = []
    self._index: Dict[int, int] = {}  # Content key -> the first slot with that key.
    self._collisions: Dict[int, List[int]] = {}  # Content key -> further slots with that key.
    self._live = 0

  @property
  def frame_shape(self) -> tuple:
    return self._frame_shape

  @property
  def dtype(self) -> np.dtype:
    return self._dtype

  @staticmethod
  def _key(frame_bytes: bytes) -> int:
    return hash(frame_bytes)

  def num_frames(self) -> int:
    """The number of distinct frames referenced now."""
    return self._live

  def nbytes(self) -> int:
    """Memory held: the allocated pool and per-slot arrays plus an estimate of the index's."""
    index = sys.getsizeof(self._index) + 2 * _INT_BYTES * len(self._index)
    index += sys.getsizeof(self._collisions) + sum(
        sys.getsizeof(slots) + 2 * _INT_BYTES * len(slots) for slots in self._collisions.values())
    free = sys.getsizeof(self._free) + _INT_BYTES * len(self._free)
    return self._pool.nbytes + self._refcount.nbytes + self._keys.nbytes + index + free

  # Adding and releasing.
  def add_stacks(self, stacks: np.ndarray) -> np.ndarray:
    """Stores stacks [B, *frame_shape, K] and returns their frame references, int64 [B, K].

    Each frame reuses the slot that holds the same bytes, if any (stacks in one call may share frames).
    """
    stacks = np.asarray(stacks)
    if (stacks.dtype != self._dtype or stacks.ndim != len(self._frame_shape) + 2
        or stacks.shape[1:-1] != self._frame_shape):
      raise ValueError(f"expected {self._dtype} stacks [B, {', '.join(map(str, self._frame_shape))}, K], "
                       f"got {stacks.dtype} {stacks.shape}")
    batch, depth = stacks.shape[0], stacks.shape[-1]
    frames = np.ascontiguousarray(np.moveaxis(stacks, -1, 1)).reshape((-1,) + self._frame_shape)
    refs = np.empty(batch * depth, np.int64)
    key, find, refcount = self._key, self._find, self._refcount
    for i, frame in enumerate(frames):
      data = frame.tobytes()
      h = key(data)
      slot = find(h, data)
      if slot < 0:
        slot = self._allocate(h, frame)
        refcount = self._refcount
      refcount[slot] += 1
      refs[i] = slot
    return refs.reshape(batch, depth)

  def release(self, refs: np.ndarray) -> None:
    """Drops one reference per entry of `refs`; frames left unreferenced free their slots.

    Raises ValueError, changing nothing, when a frame would be released more often than it was added.
    """
    slots, counts = np.unique(self._check(refs), return_counts=True)
    if np.any(self._refcount[slots] < counts):
      raise ValueError("releasing references that are not held")
    self._refcount[slots] -= counts
    for slot in slots[self._refcount[slots] == 0].tolist():
      self._unlink(int(self._keys[slot]), slot)
      self._free.append(slot)
      self._live -= 1

  def gather(self, refs: np.ndarray, frames_first: bool = False) -> np.ndarray:
    """The stacks [B, *frame_shape, K] for references [B, K], as `add_stacks` was given them; with
    `frames_first`, the same frames as [B, K, *frame_shape]. That layout is one contiguous gather: the stacked
    one interleaves the K frames pixel by pixel, ~20x the time on a CPU (B = 32 Atari stacks: ~560 against
    ~30 µs), which a learner's device does for free (`agents.sgd_learner.frames_last`)."""
    refs = np.asarray(refs)
    if refs.ndim != 2:
      raise ValueError(f"expected references [B, K], got shape {refs.shape}")
    if refs.size and np.any(self._refcount[self._check(refs)] <= 0):
      raise ValueError("gathering released frames")
    if frames_first:
      return self._pool[refs]
    out = np.empty((refs.shape[0],) + self._frame_shape + (refs.shape[1],), self._dtype)
    for k in range(refs.shape[1]):
      out[..., k] = self._pool[refs[:, k]]
    return out

  def _check(self, refs: np.ndarray) -> np.ndarray:
    refs = np.asarray(refs).reshape(-1)
    if refs.size and (not np.issubdtype(refs.dtype, np.integer) or refs.min() < 0 or refs.max() >= self._size):
      raise ValueError("frame references out of range")
    return refs.astype(np.int64, copy=False)

  # Slots and the content index.
  def _find(self, h: int, data: bytes) -> int:
    slot = self._index.get(h)
    if slot is None:
      return -1
    if self._pool[slot].tobytes() == data:
      return slot
    for slot in self._collisions.get(h, ()):
      if self._pool[slot].tobytes() == data:
        return slot
    return -1

  def _allocate(self, h: int, frame: np.ndarray) -> int:
    if self._free:
      slot = self._free.pop()
    else:
      if self._size == len(self._pool):
        self._grow(self._size + max(1, self._size // _GROWTH))
      slot = self._size
      self._size += 1
    self._pool[slot] = frame
    self._keys[slot] = h
    self._link(h, slot)
    self._live += 1
    return slot

  def _grow(self, capacity: int) -> None:
    for name in ("_pool", "_refcount", "_keys"):
      old = getattr(self, name)
      new = np.zeros((capacity,) + old.shape[1:], old.dtype)
      new[:len(old)] = old
      setattr(self, name, new)

  def _link(self, h: int, slot: int) -> None:
    if h in self._index:
      self._collisions.setdefault(h, []).append(slot)
    else:
      self._index[h] = slot

  def _unlink(self, h: int, slot: int) -> None:
    if self._index[h] == slot:
      others = self._collisions.get(h)
      if others:
        self._index[h] = others.pop()
        if not others:
          del self._collisions[h]
      else:
        del self._index[h]
    else:
      others = self._collisions[h]
      others.remove(slot)
      if not others:
        del self._collisions[h]

  # Checkpoints.
  def state(self) -> Dict[str, np.ndarray]:
    """Numpy arrays from which `from_state` rebuilds this store, its references and free slots unchanged."""
    return {
        "pool": self._pool[:self._size].copy(),
        "refcount": self._refcount[:self._size].copy(),
        "free": np.asarray(self._free, np.int64),
        "capacity": np.asarray(len(self._pool), np.int64),
    }

  @classmethod
  def from_state(cls, state: Dict[str, np.ndarray]) -> "FrameStore":
    """The store `state()` was taken from; the content index is rebuilt from the pool."""
    pool = np.asarray(state["pool"])
    refcount = np.asarray(state["refcount"], np.int64)
    free = np.asarray(state["free"], np.int64).reshape(-1)
    capacity = int(state["capacity"])
    size = len(pool)
    if (pool.ndim < 1 or refcount.shape != (size,) or capacity < max(size, 1) or np.any(refcount < 0)
        or not np.array_equal(np.sort(free), np.flatnonzero(refcount == 0))):
      raise ValueError("inconsistent frame store state")
    store = cls(pool.shape[1:], pool.dtype, capacity)
    store._pool[:size] = pool
    store._refcount[:size] = refcount
    store._size = size
    store._free = free.tolist()
    for slot in np.flatnonzero(refcount).tolist():
      h = store._key(store._pool[slot].tobytes())
      store._keys[slot] = h
      store._link(h, slot)
    store._live = size - len(free)
    return store
