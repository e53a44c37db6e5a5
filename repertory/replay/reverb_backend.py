"""Reverb tables, writers and samplers (the distributed replay service).

This is the only replay module that imports Reverb (and with it TensorFlow).
"""

from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np
import reverb
import tensorflow as tf
import tree

from repertory.replay.config import TableConfig
from repertory.replay.types import ReplayBatch

tf.config.set_visible_devices([], "GPU")  # TensorFlow only moves data here; leave accelerators to JAX.


def _signature(example_item: Any) -> Any:
  return tree.map_structure(lambda x: tf.TensorSpec(np.shape(x), tf.as_dtype(np.asarray(x).dtype)), example_item)


def make_reverb_table(config: TableConfig, example_item: Any) -> reverb.Table:
  """A Reverb table for `config` (validate it first with `validate_table_config`)."""
  signature = _signature(example_item)
  if config.sampler == "fifo":
    return reverb.Table.queue(config.name, max_size=config.max_size, signature=signature)
  if config.samples_per_insert is None:
    limiter = reverb.rate_limiters.MinSize(config.min_size_to_sample)
  else:
    limiter = reverb.rate_limiters.SampleToInsertRatio(
        samples_per_insert=config.samples_per_insert, min_size_to_sample=config.min_size_to_sample,
        error_buffer=config.error_buffer)
  if config.sampler == "prioritized":
    selector = reverb.selectors.Prioritized(config.priority_exponent)
  else:
    selector = reverb.selectors.Uniform()
  return reverb.Table(name=config.name, sampler=selector, remover=reverb.selectors.Fifo(),
                      max_size=config.max_size, rate_limiter=limiter, signature=signature)


class ReverbReplayServer:
  """A Reverb server holding the given tables; restores from `checkpoint_dir` when one is there."""

  def __init__(self, tables: Mapping[str, tuple[TableConfig, Any]], port: Optional[int] = None,
               checkpoint_dir: Optional[str] = None):
    checkpointer = reverb.checkpointers.DefaultCheckpointer(checkpoint_dir) if checkpoint_dir else None
    self._server = reverb.Server(
        [make_reverb_table(config, example) for config, example in tables.values()],
        port=port, checkpointer=checkpointer)
    self.port = self._server.port

  def address(self, host: str = "localhost") -> str:
    return f"{host}:{self.port}"

  def checkpoint(self) -> str:
    return reverb.Client(self.address()).checkpoint()

  def stop(self) -> None:
    self._server.stop()


def wait_for_server(address: str, timeout_s: float = 60.0) -> reverb.Client:
  """Connects to a Reverb server, failing with a clear message after `timeout_s`."""
  client = reverb.Client(address)
  try:
    client.server_info(timeout=int(timeout_s))
  except Exception as e:  # Reverb raises DeadlineExceeded or a gRPC error
    raise ConnectionError(f"replay server at {address} did not answer within {timeout_s:.0f} s ({type(e).__name__})") from None
  return client


class ReverbWriter:
  """Inserts whole items (one step each) through Reverb's TrajectoryWriter."""

  def __init__(self, address: str, table: str, default_priority: float = 1.0, timeout_s: float = 60.0):
    self._client = wait_for_server(address, timeout_s)
    self._table = table
    self._default_priority = default_priority
    self._timeout = timeout_s
    self._writer = self._client.trajectory_writer(num_keep_alive_refs=1)

  def insert(self, item: Any, priority: Optional[float] = None) -> None:
    self._writer.append(item)
    trajectory = tree.map_structure(lambda column: column[-1], self._writer.history)
    self._writer.create_item(self._table, self._default_priority if priority is None else priority, trajectory)

  def insert_batch(self, items: Sequence[Any], priorities: Optional[Sequence[Optional[float]]] = None) -> None:
    priorities = priorities if priorities is not None else [None] * len(items)
    for item, priority in zip(items, priorities):
      self.insert(item, priority)
    self.flush()

  def flush(self) -> None:
    # Blocks while the rate limiter holds inserts back; the timeout keeps a dead learner from hanging actors.
    self._writer.flush(block_until_num_items=0, timeout_ms=int(self._timeout * 1000))

  def close(self) -> None:
    self._writer.close()


class ReverbSampler:
  """Batches from a Reverb table as numpy (`ReplayBatch`), with priority write-back.

  Sampling goes through Reverb's TrajectoryDataset (C++ workers, many samples in flight); a batch
  that the rate limiter holds back longer than `timeout_s` raises `TimeoutError`.
  """

  def __init__(self, address: str, table: str, batch_size: int, timeout_s: float = 60.0):
    self._client = wait_for_server(address, timeout_s)
    self._address, self._table, self._batch_size = address, table, batch_size
    self._timeout_ms = int(timeout_s * 1000)
    self._iterator = self._make_iterator()

  def _make_iterator(self) -> Iterator[Any]:
    dataset = reverb.TrajectoryDataset.from_table_signature(
        self._address, self._table, max_in_flight_samples_per_worker=2 * self._batch_size,
        rate_limiter_timeout_ms=self._timeout_ms, get_signature_timeout_secs=max(1, self._timeout_ms // 1000))
    return dataset.batch(self._batch_size, drop_remainder=True).prefetch(2).as_numpy_iterator()

  def __iter__(self):
    return self

  def __next__(self) -> ReplayBatch:
    try:
      sample = next(self._iterator)
    except (tf.errors.DeadlineExceededError, tf.errors.OutOfRangeError, StopIteration):
      self._iterator = self._make_iterator()
      raise TimeoutError(f"replay table '{self._table}' served no batch within {self._timeout_ms / 1000:.0f} s") from None
    info = sample.info
    return ReplayBatch(keys=info.key, probabilities=info.probability, table_size=info.table_size, data=sample.data)

  def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
    updates = dict(zip(np.asarray(keys, np.uint64).tolist(), np.asarray(priorities, np.float64).tolist()))
    self._client.mutate_priorities(self._table, updates=updates)

  def flush(self, timeout_s: float) -> bool:
    """Priority updates are written when `update_priorities` returns (as `TableSampler.flush` waits for)."""
    return True

  def close(self) -> None:
    """Nothing to stop: the dataset's sampling workers belong to the process (as `TableSampler.close`)."""


def table_size(address: str, table: str, timeout_s: float = 10.0) -> int:
  info = reverb.Client(address).server_info(timeout=int(timeout_s))
  return int(info[table].current_size)
