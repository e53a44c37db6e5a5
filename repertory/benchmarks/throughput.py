"""`repertory bench throughput`: how close actors, replay and learners run to the machine's limits.

Measured in one run on the same cores:
  a. raw vectorised Atari steps/s (random actions) vs actor steps/s with policy inference and replay
     inserts → their ratio;
  b. replay insert and sample rates for each agent's items on each installed backend (Reverb, the
     native table in process and behind a Ray actor), Atari table memory, and prioritised sampling time
     from 10k to 1M items (see `throughput_replay`);
  c. learner updates/s for each agent's default network and batch size;
  d. end-to-end frames/s of a `ray` run with 1 and 2 actors, and how often the learner waited for data.
Writes throughput.csv, throughput.png and provenance.json (machine, commit, date, settings) to --out;
every invocation measures again (an --out of other settings is refused).
"""

import argparse
import csv
import dataclasses
import json
import os
import time
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from repertory.benchmarks.base import Benchmark, Plan, Run
from repertory.errors import ConfigError

FRAME_SKIP = 4


def write_rows(out: str, stem: str, rows: List[Dict[str, Any]], record: Dict[str, Any]) -> List[str]:
  """<stem>.csv, provenance.json (machine, commit, date and `record`) and <stem>.png in `out`; their paths."""
  from repertory.utils.plotting import plot_sections
  from repertory.utils.provenance import provenance
  info = provenance()
  paths = [os.path.join(out, name) for name in (f"{stem}.csv", "provenance.json", f"{stem}.png")]
  with open(paths[0], "w", newline="") as f:
    writer = csv.DictWriter(f, ["section", "measurement", "value", "unit", "detail"])
    writer.writeheader()
    writer.writerows(rows)
  with open(paths[1], "w") as f:
    json.dump({**info, **record}, f, indent=2)
  device = f"{record['devices']} × {record['device']} — " if "device" in record else ""
  plot_sections(rows, paths[2], f"{device}{info['machine']} — {info['commit']} — {info['date']}")
  return paths


class Results:
  def __init__(self):
    self.rows: List[Dict[str, Any]] = []

  def add(self, section: str, measurement: str, value: float, unit: str, detail: str = "") -> None:
    self.rows.append({"section": section, "measurement": measurement, "value": round(float(value), 3),
                      "unit": unit, "detail": detail})
    print(f"  {section:<10} {measurement:<44} {value:>12,.1f} {unit}  {detail}", flush=True)


def _rate(fn, seconds: float, min_calls: int = 3) -> float:
  """Calls fn() (returning how many units it did) for about `seconds`; returns units per second."""
  fn()  # warm up (jit compilation, connections)
  done, calls, start = 0, 0, time.perf_counter()
  while calls < min_calls or time.perf_counter() - start < seconds:
    done += fn()
    calls += 1
  return done / (time.perf_counter() - start)


def atari_spec(game: str):
  from repertory import environments
  from repertory.environments.specs import make_environment_spec
  env = environments.make(f"atari:{game}")
  spec = make_environment_spec(env)
  env.close()
  return spec


def measure_actors(results: Results, game: str, num_envs: int, seconds: float) -> None:
  import jax
  from repertory.agents import make_builder
  from repertory.agents.environment_loop import VectorEnvironmentLoop
  from repertory.environments.vector import make_vector
  from repertory.replay.table import Table

  env = make_vector(f"atari:{game}", num_envs, seed=0, backend="ale")
  num_actions = env.action_spec().num_values
  rng = np.random.default_rng(0)
  env.reset()

  def raw_step(batch_steps: int = 20) -> int:
    for _ in range(batch_steps):
      env.step(rng.integers(0, num_actions, num_envs))
    return batch_steps * num_envs

  raw = _rate(raw_step, seconds)
  results.add("actor", "raw AtariVectorEnv steps/s (random actions)", raw, "steps/s",
              f"{num_envs} envs; {raw * FRAME_SKIP:,.0f} frames/s")

  builder = make_builder("dqn")
  spec = atari_spec(game)
  networks = builder.make_networks(spec)
  params = networks.q_network.init(jax.random.PRNGKey(0), spec.observations.generate_value()[None])
  writer = Table(_without_rate_limit(builder.table_config()), seed=0)

  class Params:
    def get_variables(self):
      return params

  actor = builder.make_actor(builder.make_policy(networks), Params(), seed=0,
                             adder=[builder.make_adder(writer) for _ in range(num_envs)])
  loop = VectorEnvironmentLoop(env, actor)

  def actor_step(batch_steps: int = 20) -> int:
    loop.run_steps(batch_steps)
    return batch_steps * num_envs

  acting = _rate(actor_step, seconds)
  results.add("actor", "actor steps/s (DQN policy + replay inserts)", acting, "steps/s",
              f"{num_envs} envs; Nature CNN on {jax.devices()[0].platform}; native table, deduplicated frames")
  results.add("actor", "actor / raw ratio", acting / raw, "ratio", "goal >= 0.8")
  writer.close()
  env.close()


def _without_rate_limit(table):
  """The agent's table without anything that blocks inserts while nobody samples: no samples-per-insert
  limiter, and a queue (IMPALA) becomes a uniform table of at least 256 items that evicts its oldest."""
  if table.sampler == "fifo":
    table = dataclasses.replace(table, sampler="uniform", max_size=max(256, table.max_size))
  return dataclasses.replace(table, samples_per_insert=None, samples_per_insert_tolerance=None)


def _stacked_batch(example: Any, batch_size: int):
  import tree
  from repertory.replay.types import ReplayBatch
  data = tree.map_structure(lambda x: np.stack([np.asarray(x)] * batch_size), example)
  return ReplayBatch(np.arange(1, batch_size + 1, dtype=np.uint64), np.full(batch_size, 1.0 / batch_size),
                     np.full(batch_size, batch_size), data)


def measure_replay(results: Results, agent: str, game: str, seconds: float, backends: List[str]) -> None:
  from repertory.agents import make_builder
  from repertory.benchmarks.throughput_replay import distinct_items, measure_backend
  builder = make_builder(agent, {"min_replay_size": "1"} if agent in ("dqn", "der") else {})
  items = distinct_items(agent, builder.example_item(atari_spec(game)), game)
  table = _without_rate_limit(builder.table_config())
  for backend in backends:
    measure_backend(results, _rate, agent, builder, items, table, backend, seconds)


def learner_rate(agent: str, spec: Any, seconds: float, overrides: Dict[str, str] = None,
                 data_parallel: Any = None) -> Tuple[float, int]:
  """(updates/s, batch size) of `agent`'s learner with its default network on `spec`, on one fixed batch
  already on `data_parallel`'s devices."""
  import itertools
  import jax
  from repertory.agents import make_builder
  from repertory.agents.data_parallel import DataParallel
  builder = make_builder(agent, overrides or {})
  devices = data_parallel or DataParallel.create()
  batch = _stacked_batch(builder.example_item(spec), builder.config.batch_size)
  batch = batch._replace(data=devices.shard(batch.data))
  learner = builder.make_learner(builder.make_networks(spec), spec, itertools.repeat(batch), None, seed=0,
                                 data_parallel=devices)

  def update(n: int = 5) -> int:
    before = learner.steps
    for _ in range(n):
      learner.step()
    jax.block_until_ready(learner.state())
    return learner.steps - before

  return _rate(update, seconds), builder.config.batch_size


def measure_learner(results: Results, agent: str, game: str, seconds: float) -> float:
  import jax
  rate, batch_size = learner_rate(agent, atari_spec(game), seconds)
  results.add("learner", f"{agent}: updates/s", rate, "updates/s",
              f"batch {batch_size}; {1000 / rate:.1f} ms/update on {jax.devices()[0]}")
  return rate


RAY_OVERRIDES = (("min_replay_size", "2000"), ("batch_size", "32"),
                 ("updates_per_actor_step", "0.03125"))  # one update per 32 actor steps: a CPU learner keeps up


def end_to_end_runs(out: str, game: str, num_envs: int, steps: int, replay: str) -> List[Run]:
  """DQN `ray` runs with 1 and 2 actors on the game, for frames/s and the learner's data waits."""
  from repertory.launch.experiment import ExperimentConfig
  runs = []
  for actors in (1, 2):
    run_dir = os.path.join(out, f"ray_{actors}_actors")
    experiment = ExperimentConfig(agent="dqn", env=f"atari:{game}", run_dir=run_dir, launcher="ray",
                                  max_actor_steps=steps, num_actors=actors, envs_per_actor=num_envs,
                                  eval_every=10 * steps, eval_episodes=1, progress=False, replay=replay,
                                  agent_overrides=RAY_OVERRIDES)
    runs.append(Run(f"ray, {actors} actor(s)", run_dir, experiment, {"actors": actors}))
  return runs


def end_to_end_rates(results: "Results", runs: Sequence[Run], num_envs: int, replay: str) -> None:
  from repertory.utils.loggers import read_metrics
  for run in runs:
    actors = run.labels["actors"]
    rows = read_metrics(os.path.join(run.run_dir, "metrics.csv"))
    acting = [(float(r["time"]), float(r["actor_steps"])) for r in rows if r["source"] == "actor"]
    waits = [float(r["data_wait_fraction"]) for r in rows if r["source"] == "learner" and r.get("data_wait_fraction")]
    if len(acting) >= 2:
      (t0, s0), (t1, s1) = acting[0], acting[-1]
      results.add("ray", f"{actors} actor(s), {replay}: environment frames/s", (s1 - s0) * FRAME_SKIP / max(t1 - t0, 1e-9),
                  "frames/s", f"{num_envs} envs per actor")
    if waits:
      results.add("ray", f"{actors} actor(s), {replay}: learner waited for data", 100 * float(np.mean(waits)), "% of steps",
                  "goal < 5% when actors keep up")


@dataclasses.dataclass
class _Measurement:
  agents: List[str]
  backends: List[str]
  results: Results


class Throughput(Benchmark):
  name = "throughput"
  help = "actor, replay, learner and end-to-end throughput"
  description = __doc__
  record_file = "provenance.json"
  reuse_finished = False

  def add_arguments(self, p: argparse.ArgumentParser) -> None:
    p.add_argument("--game", default="Pong", help="Atari game for the environment and actor measurements")
    p.add_argument("--num-envs", type=int, default=8, help="environments per vectorised actor")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per rate measurement")
    p.add_argument("--agents", default="dqn,der,impala", help="agents whose replay and learner to measure (those installed)")
    p.add_argument("--ray-steps", type=int, default=20_000, help="actor steps of each end-to-end ray run (0 skips them)")
    p.add_argument("--replay", default="auto", choices=("auto", "native", "reverb"),
                   help="replay backends to measure (auto: every installed one); the end-to-end runs use the first")
    p.add_argument("--quick", action="store_true", help="reduced mode for CI: 2 envs, 1 s per measurement, no ray runs, "
                   "no Ray-served table, prioritised sampling up to 10k items")

  def settings(self, record):
    return {k: record.get(k) for k in ("game", "num_envs", "seconds", "quick")}

  def plan(self, args: argparse.Namespace) -> Plan:
    from repertory.agents import agent_names
    from repertory.benchmarks import throughput_replay
    from repertory.environments.atari import rom_id
    if args.report_only:
      raise ConfigError("--report-only: the throughput benchmark measures the machine as it runs; run it without "
                        "--report-only")
    if args.quick:
      args.num_envs, args.seconds, args.ray_steps = 2, 1.0, 0
    if args.num_envs < 1 or args.seconds <= 0 or args.ray_steps < 0:
      raise ConfigError("--num-envs and --seconds must be positive and --ray-steps >= 0")
    rom_id(args.game)  # unknown games fail here
    agents = [a for a in args.agents.split(",") if a]
    unknown = [a for a in agents if a not in agent_names()]
    if unknown:
      raise ConfigError(f"unknown agent(s) {', '.join(unknown)}; installed: {', '.join(agent_names())}")
    backends = throughput_replay.backends(args.replay)
    if not args.quick:  # each backend also as the `ray` launcher serves it: from another process
      backends = [name for backend in backends for name in (backend, f"{backend}+ray")]
    runs = end_to_end_runs(args.out, args.game, args.num_envs, args.ray_steps, backends[0]) if args.ray_steps else []
    record = {"game": args.game, "num_envs": args.num_envs, "seconds": args.seconds, "quick": args.quick,
              "replay_backends": backends}
    return Plan(record, tuple(runs), context=_Measurement(agents, backends, Results()))

  def measure(self, args: argparse.Namespace, plan: Plan) -> None:
    from repertory.agents import make_config
    from repertory.benchmarks import throughput_replay
    from repertory.utils.provenance import provenance
    info, results, measurement = provenance(), plan.context.results, plan.context
    print(f"throughput on {info['machine']} (commit {info['commit']}, {info['jax_devices']})", flush=True)
    measure_actors(results, args.game, args.num_envs, args.seconds)
    throughput_replay.measure_atari_memory(results, args.game, 300 if args.quick else 3_000)
    throughput_replay.measure_prioritized_scaling(results, (1_000, 10_000) if args.quick else (10_000, 100_000, 1_000_000))
    updates_per_second = {}
    try:
      for agent in measurement.agents:
        measure_replay(results, agent, args.game, args.seconds, measurement.backends)
        updates_per_second[agent] = measure_learner(results, agent, args.game, args.seconds)
    finally:
      throughput_replay.stop_ray()
    for row in list(results.rows):
      agent, _, measured = row["measurement"].partition(": ")
      if measured.endswith(" samples/s") and agent in updates_per_second:
        consumption = updates_per_second[agent] * make_config(agent).batch_size
        backend = measured[:-len(" samples/s")]
        results.add("replay", f"{agent}: {backend} sample rate / learner consumption", row["value"] / consumption,
                    "ratio", "goal >= 5")

  def report(self, args, plan: Plan, finished, missing, wall_clock_s: float) -> List[str]:
    results = plan.context.results
    end_to_end_rates(results, finished, args.num_envs, plan.context.backends[0])
    return write_rows(args.out, "throughput", results.rows, plan.record)


BENCHMARK = Throughput()
