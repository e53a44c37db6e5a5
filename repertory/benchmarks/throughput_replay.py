"""Replay measurements of `repertory bench throughput`, for each installed backend on the same cores.

  * insert and sample rates of each agent's items (DQN and DER: distinct real Atari transitions): the
    native table in process and served by a Ray actor through the learner's sampler (how the `ray`
    launcher serves it), Reverb with its server in the same process and in a Ray actor (gRPC between
    processes, how the `ray` launcher serves it);
  * memory per 100k Atari transitions: the plain layout, and the native table with frame deduplication;
  * prioritised sampling time (batch 32 + its priority update) at 10k, 100k and 1M items.
"""

import itertools
import sys
import time
from typing import Any, Callable, List

import numpy as np

from repertory.launch.ray_cluster import start_local_ray
from repertory.replay.backends import reverb_installed

ATARI_TABLE_ITEMS = 100_000


def backends(requested: str) -> List[str]:
  """The backends to measure: `native`, `reverb`, or `auto` for every installed one."""
  if requested == "auto":
    return ["native", "reverb"] if reverb_installed() else ["native"]
  return [requested]


def _ray_actor(cls, *args, max_concurrency: int = 1):
  """An actor of `cls` in its own process and a function that kills it. Ray starts here on first use and
  stays up until `stop_ray` (starting it again in one process can fail to reach its new GCS)."""
  import ray
  if not ray.is_initialized():
    start_local_ray(num_cpus=2)
  actor = ray.remote(cls).options(max_concurrency=max_concurrency).remote(*args)
  return actor, lambda: ray.kill(actor)


def stop_ray() -> None:
  """Shuts down the Ray that `_ray_actor` started, if any."""
  ray = sys.modules.get("ray")  # imported only where an actor was started
  if ray is not None and ray.is_initialized():
    ray.shutdown()


class _ReverbServerNode:
  """A Reverb server in a Ray actor, as the `ray` launcher's replay node holds it."""

  def __init__(self, table, example):
    from repertory.replay.reverb_backend import ReverbReplayServer
    self._server = ReverbReplayServer({table.name: (table, example)})

  def address(self) -> str:
    return self._server.address()


def _reverb_client(table, example, batch_size, served_by_ray: bool):
  from repertory.replay.reverb_backend import ReverbReplayServer, ReverbSampler, ReverbWriter
  if served_by_ray:
    import ray
    actor, stop = _ray_actor(_ReverbServerNode, table, example)
    address = ray.get(actor.address.remote(), timeout=60)
  else:
    server = ReverbReplayServer({table.name: (table, example)})
    address, stop = server.address(), server.stop
  writer = ReverbWriter(address, table.name)
  sampler = ReverbSampler(address, table.name, batch_size)
  return writer, (lambda: next(sampler)), stop


def _native_client(table, batch_size, served_by_ray: bool, frames_first: bool = False):
  from repertory.replay.table import Table
  from repertory.replay.table_client import TableSampler, TableWriter
  if not served_by_ray:
    local = Table(table, seed=0)
    return TableWriter(local), TableSampler(local, batch_size, frames_first=frames_first).__next__, local.close
  import ray
  from repertory.launch.replay_node import SAMPLER_BATCHES_PER_CALL, SAMPLER_CALLS_IN_FLIGHT
  actor, stop_actor = _ray_actor(Table, table, 0, max_concurrency=4)

  class Remote:  # the replay node's calls, as Ray remote calls
    def insert_batch(self, items, priorities, timeout_s):
      return ray.get(actor.insert_batch.remote(items, priorities, timeout_s), timeout=60)

    def sample_batches(self, batch_size, max_batches, timeout_s, frames_first=False):
      return ray.get(actor.sample_batches.remote(batch_size, max_batches, timeout_s, frames_first), timeout=60)

  sampler = TableSampler(Remote(), batch_size, batches_per_call=SAMPLER_BATCHES_PER_CALL,
                         calls_in_flight=SAMPLER_CALLS_IN_FLIGHT, frames_first=frames_first)

  def stop():
    sampler.close()
    stop_actor()
  return TableWriter(Remote()), sampler.__next__, stop


def distinct_items(agent: str, example: Any, game: str, count: int = 1_000) -> List[Any]:
  """Items to insert: for DQN and DER `count` distinct n-step transitions of `game` under a random policy
  (real frames, as a table holds them), for other agents the example item."""
  if agent not in ("dqn", "der"):
    return [example]
  from repertory import environments

  class Collect:
    def __init__(self):
      self.items = []

    def insert(self, item, priority=None):
      self.items.append(item)

  collected = Collect()
  environment = environments.make(f"atari:{game}", seed=0)
  write_random_policy_transitions(environment, collected, count)
  environment.close()
  return collected.items[:count]


def measure_backend(results: Any, rate: Callable, agent: str, builder: Any, items: List[Any], table: Any,
                    backend: str, seconds: float) -> None:
  """Insert and sample rates of `agent`'s `items` through one backend ("native", "native+ray", "reverb",
  "reverb+ray"), sampled as the agent's learner samples (frames-first where it takes them so, native only)."""
  batch_size = builder.config.batch_size
  served_by_ray = backend.endswith("+ray")
  if backend.startswith("reverb"):
    writer, sample, stop = _reverb_client(table, items[0], batch_size, served_by_ray)
  else:
    from repertory.agents.builder import takes_frames_first
    writer, sample, stop = _native_client(table, batch_size, served_by_ray, takes_frames_first(builder))
  inserted = iter(itertools.cycle(items))
  try:
    def insert(n: int = 100) -> int:
      for _ in range(n):
        writer.insert(next(inserted))
      writer.flush()
      return n

    results.add("replay", f"{agent}: {backend} inserts/s", rate(insert, seconds), "items/s", type(items[0]).__name__)

    def draw(n: int = 10) -> int:
      for _ in range(n):
        sample()
      return n * batch_size

    results.add("replay", f"{agent}: {backend} samples/s", rate(draw, seconds), "items/s", f"batch {batch_size}")
  finally:
    stop()


def write_random_policy_transitions(environment: Any, writer: Any, steps: int, n_step: int = 10, seed: int = 0) -> None:
  """Steps `environment` with uniformly random actions and writes its n-step transitions to `writer`."""
  from repertory.replay.adders import NStepTransitionAdder
  adder = NStepTransitionAdder(writer, n_step=n_step, discount=0.99)
  rng = np.random.default_rng(seed)
  timestep = environment.reset()
  adder.add_first(timestep)
  for _ in range(steps):
    action = rng.integers(environment.action_spec().num_values)
    timestep = environment.step(action)
    adder.add(np.int32(action), timestep)
    if timestep.last():
      timestep = environment.reset()
      adder.add_first(timestep)


def measure_atari_memory(results: Any, game: str, steps: int) -> None:
  """Bytes per stored DQN/DER Atari transition, extrapolated to a 100k-item table."""
  from repertory import environments
  from repertory.replay.config import TableConfig
  from repertory.replay.table import Table
  table = Table(TableConfig(max_size=steps, min_size_to_sample=1, deduplicate_frames=True), rate_limited=False)
  environment = environments.make(f"atari:{game}", seed=0)
  write_random_policy_transitions(environment, table, steps)
  environment.close()
  per_item = table.nbytes() / table.size()
  plain = sum(np.asarray(leaf).nbytes for leaf in _leaves(table.sample(1).data)) * 1.0
  results.add("replay", "Atari table memory, plain layout", plain * ATARI_TABLE_ITEMS / 2**30, "GiB / 100k items",
              f"{plain / 1024:.1f} KiB per transition (obs + next_obs stacks)")
  results.add("replay", "Atari table memory, native deduplicated", per_item * ATARI_TABLE_ITEMS / 2**30,
              "GiB / 100k items", f"{per_item / 1024:.1f} KiB per transition, measured on {table.size():,} {game} steps")


def _leaves(data):
  import tree
  return tree.flatten(data)


def measure_prioritized_scaling(results: Any, sizes=(10_000, 100_000, 1_000_000), repeats: int = 200) -> None:
  """Milliseconds per prioritised batch of 32 plus its priority update, by table size (small items)."""
  from repertory.replay.config import TableConfig
  from repertory.replay.table import Table
  rng = np.random.default_rng(0)
  for size in sizes:
    table = Table(TableConfig(max_size=size, min_size_to_sample=1), rate_limited=False)
    chunk = 10_000
    for start in range(0, size, chunk):
      n = min(chunk, size - start)
      table.insert_batch([np.float32(i) for i in range(n)], list(rng.uniform(0.1, 2.0, n)))
    table.sample(32)
    begin = time.perf_counter()
    for _ in range(repeats):
      batch = table.sample(32)
      table.update_priorities(batch.keys, rng.uniform(0.1, 2.0, 32))
    milliseconds = 1000 * (time.perf_counter() - begin) / repeats
    results.add("replay", f"prioritised sample + update at {size:,} items", milliseconds, "ms", "batch 32, native")
