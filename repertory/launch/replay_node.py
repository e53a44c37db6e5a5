"""The replay node of a distributed program, on either backend, and the clients the other nodes use.

With `native` the node holds the project's own `Table` (rate-limited, thread-safe) and serves it by
method calls: direct calls under the thread launcher, Ray remote calls under `ray`. With `reverb` it
starts a Reverb server and the clients talk to it over gRPC. `checkpoint_replay` restores the table from
the run's `replay_checkpoint/` at start; `checkpoint()` writes one.
"""

import os
import secrets
from typing import Any, Callable, Optional, Sequence

import numpy as np

from repertory.environments.specs import EnvironmentSpec
from repertory.launch.experiment import ExperimentConfig
from repertory.launch.service import Service, node_ip
from repertory.replay.backends import REVERB_TAGS_FILE, check_checkpoint_backend
from repertory.utils.files import write_json

CLIENT_TIMEOUT_S = 1.0  # each blocked insert or sample returns within this, so stop flags are seen
# The learner's native sampler: up to 4 batches per call, 2 calls in flight. Served by a Ray actor, DER's
# Atari batches then come about twice as fast as one batch per call (BUILD_NOTES.md, "The native replay service").
SAMPLER_BATCHES_PER_CALL, SAMPLER_CALLS_IN_FLIGHT = 4, 2
# Native keys handed out carry the node's incarnation in their top 16 bits (the table's own keys stay far below 2^48).
INCARNATION_SHIFT = np.uint64(48)
TABLE_KEY_MASK = (np.uint64(1) << INCARNATION_SHIFT) - np.uint64(1)


class ReplayService(Service):
  """One replay table for the agent, served by the backend the experiment names."""

  def __init__(self, experiment: ExperimentConfig, spec: EnvironmentSpec):
    super().__init__()
    builder = experiment.make_builder()
    config = builder.table_config()
    self.table = config.name
    self._backend = experiment.replay
    self._checkpoint_dir = os.path.join(experiment.run_dir, "replay_checkpoint")
    checkpoint_dir = self._checkpoint_dir if experiment.checkpoint_replay else None
    restore = checkpoint_dir is not None and check_checkpoint_backend(checkpoint_dir, self._backend)
    self._restored, self._checkpointing = restore, checkpoint_dir is not None
    if self._backend == "reverb":
      from repertory.replay.reverb_backend import ReverbReplayServer
      self._server = ReverbReplayServer({config.name: (config, builder.example_item(spec))},
                                        checkpoint_dir=checkpoint_dir)
    else:
      from repertory.replay.table import Table
      if restore:
        self._table = Table.restore(checkpoint_dir, config)  # continues the saved random stream
      else:
        self._table = Table(config, seed=experiment.seed)
      self._incarnation = np.uint64(secrets.randbelow(2**16 - 1) + 1)

  def recovery(self) -> str:
    if self._restored:
      return f"{self.size()} items from replay_checkpoint/"
    if self._checkpointing:
      return "an empty table (no replay checkpoint yet)"
    return "an empty table (without --checkpoint-replay, a dead replay's items are lost)"

  def backend(self) -> str:
    return self._backend

  def table_name(self) -> str:
    return self.table

  def address(self) -> str:
    """The Reverb server's address (reverb backend only)."""
    return self._server.address(node_ip())

  def size(self) -> int:
    if self._backend == "reverb":
      from repertory.replay.reverb_backend import table_size
      return table_size(self._server.address(), self.table)
    return self._table.size()

  def insert_batch(self, items: Sequence[Any], priorities: Optional[Sequence[Optional[float]]] = None,
                   timeout_s: float = CLIENT_TIMEOUT_S) -> int:
    """Inserts as many of `items` as the rate limiter lets in within `timeout_s`; returns how many."""
    return self._table.insert_batch(items, priorities, timeout_s=timeout_s)

  def sample_batches(self, batch_size: int, max_batches: int, timeout_s: float = CLIENT_TIMEOUT_S,
                     frames_first: bool = False):
    """Batches whose keys carry this node's incarnation (`update_priorities`); `frames_first` as `Table.sample`."""
    tag = self._incarnation << INCARNATION_SHIFT
    return [batch._replace(keys=batch.keys | tag)
            for batch in self._table.sample_batches(batch_size, max_batches, timeout_s=timeout_s,
                                                    frames_first=frames_first)]

  def frame_leaves(self) -> Any:
    """Which leaves of an item are kept as frames (`Table.frame_leaves`); None while the table is empty."""
    return self._table.frame_leaves()

  def update_priorities(self, keys, priorities) -> None:
    """Sets the priorities of keys this node handed out. Keys of a node before a restart are ignored: a new table
    numbers its items from where its checkpoint left off (or from 1), so such a key may name another item now."""
    keys, priorities = np.asarray(keys, np.uint64).reshape(-1), np.asarray(priorities).reshape(-1)
    if keys.shape != priorities.shape:
      raise ValueError(f"replay node: {keys.size} keys but {priorities.size} priorities")
    ours = (keys >> INCARNATION_SHIFT) == self._incarnation
    self._table.update_priorities(keys[ours] & TABLE_KEY_MASK, priorities[ours])

  def checkpoint(self, learner_step: Optional[int] = None) -> str:
    """Writes the table to replay_checkpoint/, tagged with the learner step of the checkpoint round it belongs to
    (what `distributed.resume_step` matches). Reverb's tags are written right after its checkpoint."""
    tags = {"learner_step": learner_step}
    if self._backend == "reverb":
      path = self._server.checkpoint()
      write_json(os.path.join(self._checkpoint_dir, REVERB_TAGS_FILE), tags)
      return path
    return self._table.checkpoint(self._checkpoint_dir, tags)

  def stop(self) -> None:
    if self._backend == "reverb":
      self._server.stop()
    else:
      self._table.close()
    super().stop()


class ReverbClientOfNode:
  """A Reverb writer or sampler that follows the replay node across restarts.

  Reverb clients address a server by host:port, and a restarted replay node serves on a new port. When a
  call fails, this asks the node for its address; if it moved, the client is built again for the new
  server (the items in flight died with the old one) and the call is made once more there."""

  def __init__(self, replay: Any, make: Callable[[str], Any]):
    self._replay, self._make = replay, make
    self._address = replay.address()
    self._client = make(self._address)

  def _moved(self) -> bool:
    address = self._replay.address()
    if address == self._address:
      return False
    self._address, self._client = address, self._make(address)
    return True

  def _call(self, method: str, *args, **kwargs):
    try:
      return getattr(self._client, method)(*args, **kwargs)
    except Exception:
      if not self._moved():
        raise
      return getattr(self._client, method)(*args, **kwargs)

  def __getattr__(self, method: str):
    return lambda *args, **kwargs: self._call(method, *args, **kwargs)

  def frame_leaves(self) -> None:
    """Reverb sends stacked frames as they were inserted: none come frames-first."""
    return None

  def __iter__(self):
    return self

  def __next__(self):
    return self._call("__next__")


def make_writer(replay: Any) -> Any:
  """An actor's writer into the replay node `replay` (a handle resolved by the launcher)."""
  if replay.backend() == "reverb":
    from repertory.replay.reverb_backend import ReverbWriter
    table = replay.table_name()
    return ReverbClientOfNode(replay, lambda address: ReverbWriter(address, table, timeout_s=CLIENT_TIMEOUT_S))
  from repertory.replay.table_client import TableWriter
  return TableWriter(replay, timeout_s=CLIENT_TIMEOUT_S)


def make_sampler(replay: Any, batch_size: int, frames_first: bool = False) -> Any:
  """The learner's batch iterator (with `update_priorities`) from the replay node `replay`. With `frames_first`
  a native table sends stacked frames frames-first and the iterator's `frame_leaves()` marks them (a learner
  that puts them back itself: the builder's `frames_first_batches`); Reverb sends them stacked."""
  if replay.backend() == "reverb":
    from repertory.replay.reverb_backend import ReverbSampler
    table = replay.table_name()
    return ReverbClientOfNode(replay, lambda address: ReverbSampler(address, table, batch_size,
                                                                    timeout_s=CLIENT_TIMEOUT_S))
  from repertory.replay.table_client import TableSampler
  return TableSampler(replay, batch_size, timeout_s=CLIENT_TIMEOUT_S, batches_per_call=SAMPLER_BATCHES_PER_CALL,
                      calls_in_flight=SAMPLER_CALLS_IN_FLIGHT, frames_first=frames_first)
