"""Replay measurements of `repertory bench throughput`, for each installed backend on the same cores.

  * insert and sample rates of each agent's items: Reverb through its gRPC server, the native table in
    process and served by a Ray actor (how the `ray` launcher serves it);
  * memory per 100k Atari transitions: the plain layout, and the native table with frame deduplication;
  * prioritised sampling time (batch 32 + its priority update) at 10k, 100k and 1M items.
"""

import time
from typing import Any, Callable, List

import numpy as np

from repertory.replay.backends import reverb_installed

ATARI_TABLE_ITEMS = 100_000


def backends(requested: str) -> List[str]:
  """The backends to measure: `native`, `reverb`, or `auto` for every installed one."""
  if requested == "auto":
    return ["native", "reverb"] if reverb_installed() else ["native"]
  return [requested]


def _reverb_client(table, example, batch_size):
  from repertory.replay.reverb_backend import ReverbReplayServer, ReverbSampler, ReverbWriter
  server = ReverbReplayServer({table.name: (table, example)})
  writer = ReverbWriter(server.address(), table.name)
  sampler = ReverbSampler(server.address(), table.name, batch_size)
  return writer, (lambda: next(sampler)), server.stop


def _native_client(table, batch_size, served_by_ray: bool):
  from repertory.replay.table import Table
  from repertory.replay.table_client import TableSampler, TableWriter
  if not served_by_ray:
    local = Table(table, seed=0)
    return TableWriter(local), TableSampler(local, batch_size).__next__, local.close
  import ray
  started = not ray.is_initialized()
  if started:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
  actor = ray.remote(Table).options(max_concurrency=4).remote(table, 0)

  class Remote:  # the replay node's calls, as Ray remote calls
    def insert_batch(self, items, priorities, timeout_s):
      return ray.get(actor.insert_batch.remote(items, priorities, timeout_s), timeout=60)

    def sample(self, batch_size, timeout_s):
      return ray.get(actor.sample.remote(batch_size, timeout_s), timeout=60)

  def stop():
    ray.kill(actor)
    if started:
      ray.shutdown()
  return TableWriter(Remote()), TableSampler(Remote(), batch_size).__next__, stop


def measure_backend(results: Any, rate: Callable, agent: str, builder: Any, example: Any, table: Any,
                    backend: str, seconds: float) -> None:
  """Insert and sample rates of `agent`'s items through one backend ("reverb", "native", "native+ray")."""
  batch_size = builder.config.batch_size
  if backend == "reverb":
    writer, sample, stop = _reverb_client(table, example, batch_size)
  else:
    writer, sample, stop = _native_client(table, batch_size, served_by_ray=backend == "native+ray")
  try:
    def insert(n: int = 100) -> int:
      for _ in range(n):
        writer.insert(example)
      writer.flush()
      return n

    results.add("replay", f"{agent}: {backend} inserts/s", rate(insert, seconds), "items/s", type(example).__name__)

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
