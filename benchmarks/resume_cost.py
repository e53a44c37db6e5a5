"""What an exact `sync` resume costs on Atari 100k (launch/sync_run.py): the run state a checkpoint writes
beside the learner's (the DER replay table after `--steps` Pong steps, frames deduplicated, plus the recorded
actions), the time to write and to read it, and the time to bring a fresh environment back by replaying the
recorded resets and actions.

Usage: .venv/bin/python benchmarks/resume_cost.py [--steps 100000]
Prints the machine, commit and date, then the figures (they belong in BUILD_NOTES.md, "Exact resume").
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--steps", type=int, default=100_000, help="agent steps of random play recorded and stored")
  parser.add_argument("--game", default="Pong", help="Atari 100k game")
  args = parser.parse_args()
  if args.steps < 1:
    sys.exit(f"resume_cost: --steps must be >= 1, got {args.steps}")
  from repertory.agents import make_builder
  from repertory.agents.environment_loop import EnvironmentLoop
  from repertory.environments import make
  from repertory.replay.table import Table
  from repertory.utils import snapshots
  from repertory.utils.provenance import provenance

  builder = make_builder("der", {})
  table = Table(builder.table_config(), seed=0, rate_limited=False)

  class RandomActor:
    def __init__(self, adder, num_actions):
      self._adder, self._rng, self._n = adder, np.random.default_rng(0), num_actions

    def select_action(self, observation):
      return np.int32(self._rng.integers(self._n))

    def observe_first(self, timestep, index=0):
      self._adder.add_first(timestep)

    def observe(self, action, timestep, index=0):
      self._adder.add(action, timestep)

    def update(self):
      pass

  name = f"atari:{args.game}"
  environment = make(name, seed=0)
  loop = EnvironmentLoop(environment, RandomActor(builder.make_adder(table), environment.action_spec().num_values),
                         record=True)
  start = time.perf_counter()
  for done in range(0, args.steps, 10_000):
    loop.run_steps(min(10_000, args.steps - done))
    print(f"  played {done + min(10_000, args.steps - done):,} steps", flush=True)
  play_s = time.perf_counter() - start
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "state")
    start = time.perf_counter()
    snapshots.write(path, {"replay": table.state(), "run": snapshots.capture(loop)})
    write_s = time.perf_counter() - start
    size = os.path.getsize(path)
    start = time.perf_counter()
    state = snapshots.read(path)
    read_s = time.perf_counter() - start
  fresh = EnvironmentLoop(make(name, seed=0), None, record=True)
  snapshots.restore(fresh, state["run"])
  start = time.perf_counter()
  fresh.replay_environment()
  replay_s = time.perf_counter() - start
  info = provenance()
  print(f"machine: {info.get('machine')}  commit: {info.get('commit')}  date: {info.get('date')}")
  print(f"{args.game}, {args.steps:,} random steps, DER replay ({table.size():,} items, "
        f"{table.nbytes() / 2**20:.0f} MiB in memory)")
  print(f"run state: {size / 2**20:.0f} MiB; write {write_s:.2f} s, read and check {read_s:.2f} s")
  print(f"environment replay: {replay_s:.1f} s ({args.steps / replay_s:,.0f} steps/s; playing with the adder "
        f"took {play_s:.1f} s)")


if __name__ == "__main__":
  main()
