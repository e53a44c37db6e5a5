"""How a replay table keeps its items: one column per leaf of the item structure.

A `PlainColumn` is a preallocated ring buffer [max_size, *leaf shape]. With frame deduplication, every
stacked-frame leaf (uint8 [H, W, K], see `frame_store.is_frame_stack`) becomes a `FrameColumn`: the item
holds K frame references into one `FrameStore` shared by all such leaves, so an Atari transition's
observation and next observation, and consecutive transitions, share their frames. Reads rebuild the
stacks, so a sampled batch is identical to the plain layout's.
"""

from typing import Dict, List, Optional, Sequence

import numpy as np

from repertory.replay.frame_store import FrameStore, is_frame_stack


class PlainColumn:
  def __init__(self, max_size: int, leaf_shape: Sequence[int], dtype):
    self.buffer = np.zeros((max_size,) + tuple(leaf_shape), dtype)

  @property
  def leaf_shape(self):
    return self.buffer.shape[1:]

  @property
  def dtype(self):
    return self.buffer.dtype

  def write(self, slots: np.ndarray, values: np.ndarray, occupied: np.ndarray) -> None:
    self.buffer[slots] = values

  def read(self, slots: np.ndarray, frames_first: bool = False) -> np.ndarray:
    return self.buffer[slots]  # fancy indexing copies

  def state(self, filled: int) -> Dict[str, np.ndarray]:
    return {"values": self.buffer[:filled]}

  def restore(self, state: Dict[str, np.ndarray], filled: int) -> None:
    self.buffer[:filled] = state["values"]

  def nbytes(self) -> int:
    return self.buffer.nbytes


class FrameColumn:
  """A stacked-frame leaf kept as [max_size, K] references into a shared `FrameStore`."""

  def __init__(self, max_size: int, leaf_shape: Sequence[int], dtype, frames: FrameStore):
    self._leaf_shape = tuple(leaf_shape)
    self._dtype = np.dtype(dtype)
    self._frames = frames
    self.refs = np.zeros((max_size, self._leaf_shape[-1]), np.int64)

  @property
  def leaf_shape(self):
    return self._leaf_shape

  @property
  def dtype(self):
    return self._dtype

  def write(self, slots: np.ndarray, values: np.ndarray, occupied: np.ndarray) -> None:
    """`occupied` marks the slots whose old item this write evicts (its frames are released)."""
    new_refs = self._frames.add_stacks(values)  # before releasing, so shared frames are kept, not re-added
    self._frames.release(self.refs[slots[occupied]])
    self.refs[slots] = new_refs

  def read(self, slots: np.ndarray, frames_first: bool = False) -> np.ndarray:
    return self._frames.gather(self.refs[slots], frames_first)

  def state(self, filled: int) -> Dict[str, np.ndarray]:
    return {"refs": self.refs[:filled]}

  def restore(self, state: Dict[str, np.ndarray], filled: int) -> None:
    self.refs[:filled] = state["refs"]

  def nbytes(self) -> int:
    return self.refs.nbytes


class Storage:
  """The columns of a table, allocated from the first chunk of items (one array per leaf)."""

  def __init__(self, max_size: int, columns: Sequence[np.ndarray], deduplicate_frames: bool,
               frames: Optional[FrameStore] = None):
    self.frames = frames
    self.columns: List = []
    for column in columns:
      if deduplicate_frames and is_frame_stack(column[0]):
        if self.frames is None:
          self.frames = FrameStore(column.shape[1:3], column.dtype, initial_capacity=max_size + max_size // 100 + 64)
        self.columns.append(FrameColumn(max_size, column.shape[1:], column.dtype, self.frames))
      else:
        self.columns.append(PlainColumn(max_size, column.shape[1:], column.dtype))

  def write(self, slots: np.ndarray, columns: Sequence[np.ndarray], occupied: np.ndarray) -> None:
    for stored, values in zip(self.columns, columns):
      stored.write(slots, values, occupied)

  def read(self, slots: np.ndarray, frames_first: bool = False) -> List[np.ndarray]:
    """Each leaf's values at `slots`; with `frames_first`, the stacked-frame leaves as [B, K, H, W]
    (`frame_columns` says which)."""
    return [stored.read(slots, frames_first) for stored in self.columns]

  def frame_columns(self) -> List[bool]:
    """Per leaf: whether it is kept as frames (and so read frames-first on request)."""
    return [isinstance(c, FrameColumn) for c in self.columns]

  def nbytes(self) -> int:
    return sum(c.nbytes() for c in self.columns) + (self.frames.nbytes() if self.frames is not None else 0)

  def state(self, filled: int) -> Dict[str, np.ndarray]:
    arrays = {}
    for j, column in enumerate(self.columns):
      arrays.update({f"leaf_{j}.{name}": value for name, value in column.state(filled).items()})
    if self.frames is not None:
      arrays.update({f"frames.{name}": value for name, value in self.frames.state().items()})
    return arrays

  def layout(self) -> List[dict]:
    """What `restore` needs to rebuild the columns: each leaf's kind, shape and dtype."""
    return [{"kind": "frames" if isinstance(c, FrameColumn) else "plain", "shape": list(c.leaf_shape),
             "dtype": np.dtype(c.dtype).str} for c in self.columns]

  @classmethod
  def restore(cls, max_size: int, layout: List[dict], arrays: Dict[str, np.ndarray], filled: int) -> "Storage":
    frames_state = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("frames.")}
    frames = FrameStore.from_state(frames_state) if frames_state else None
    storage = cls.__new__(cls)
    storage.frames, storage.columns = frames, []
    for j, leaf in enumerate(layout):
      if leaf["kind"] == "frames":
        column = FrameColumn(max_size, leaf["shape"], leaf["dtype"], frames)
      else:
        column = PlainColumn(max_size, leaf["shape"], leaf["dtype"])
      column.restore({k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"leaf_{j}.")}, filled)
      storage.columns.append(column)
    return storage
