"""The host's work per Atari step of a DER `sync` run, piece by piece: what sets the pace of the Atari 100k suite on
an accelerator host, where the device's share of a step is small (BUILD_NOTES.md, "Many runs, one process").

Measures, on one core (OpenBLAS single-threaded): an environment step and its area resize; a prioritised batch of
32 from a DER table of 3,000 Pong transitions, stacked and frames-first (`Table.sample(frames_first=True)`); one
insert through the adder; a priority update of 32; and 100 evaluation games of an untrained DER on `--eval-envs`
1 and 10 environments (untrained Pong games last ~760 steps each). As in a `sync` run, glibc's malloc keeps freed
memory (`utils.memory`) unless `--default-malloc`.

Usage: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/atari_host_work.py [--game Pong] [--eval-games 100]
Prints the machine, commit and date, then one line per figure.
"""

import argparse
import dataclasses
import time

import numpy as np


def _per_call(fn, calls: int) -> float:
  start = time.perf_counter()
  for _ in range(calls):
    fn()
  return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--game", default="Pong", help="Atari 100k game")
  parser.add_argument("--eval-games", type=int, default=100, help="evaluation games per --eval-envs setting (0: skip)")
  parser.add_argument("--default-malloc", action="store_true",
                      help="leave glibc's malloc thresholds as they are (a sync run raises them: utils.memory)")
  args = parser.parse_args()
  from repertory.utils.memory import keep_freed_memory
  if not args.default_malloc:
    keep_freed_memory()
  from repertory.agents.environment_loop import EnvironmentLoop, evaluation_loop
  from repertory.benchmarks.atari100k import experiment_config
  from repertory.environments.atari import resize_area
  from repertory.replay.table import Table
  from repertory.utils.provenance import provenance

  info = provenance()
  print(f"{info['machine']} | commit {info['commit']} | {info['date']} | {info['jax_devices']}", flush=True)
  experiment = experiment_config("der", args.game, 0, "unused", {}, steps=1_000, eval_episodes=max(1, args.eval_games))
  builder = experiment.make_builder()
  environment = experiment.make_environment(seed=0)
  table = Table(builder.table_config(), seed=0, rate_limited=False)
  adder = builder.make_adder(table)
  rng = np.random.default_rng(0)
  actions = environment.action_spec().num_values

  class RandomActor:
    def select_action(self, observation):
      return np.int32(rng.integers(actions))

    def observe_first(self, timestep, index=0):
      adder.add_first(timestep)

    def observe(self, action, timestep, index=0):
      adder.add(action, timestep)

    def update(self):
      pass

  loop = EnvironmentLoop(environment, RandomActor())
  loop.run_steps(3_000)
  inserts = [0.0]
  add = adder.add

  def timed_add(action, timestep):
    start = time.perf_counter()
    add(action, timestep)
    inserts[0] += time.perf_counter() - start

  adder.add = timed_add
  start = time.perf_counter()
  loop.run_steps(2_000)
  step_us = ((time.perf_counter() - start) - inserts[0]) / 2_000 * 1e6
  frame = environment.ale.getScreenGrayscale()
  print(f"environment step (frame skip 4, max-pool, resize, stack): {step_us:.0f} us, of which the area resize "
        f"{_per_call(lambda: resize_area(frame, 84, 84), 2_000):.0f} us", flush=True)
  print(f"one transition through the n-step adder into the table: {inserts[0] / 2_000 * 1e6:.0f} us", flush=True)
  for frames_first in (False, True):
    us = _per_call(lambda: table.sample(32, frames_first=frames_first), 1_000)
    layout = "frames-first [B, K, H, W]" if frames_first else "stacked [B, H, W, K]"
    print(f"sample 32 ({layout}): {us:.0f} us", flush=True)
  keys = table.sample(32).keys
  priorities = rng.uniform(0.1, 2.0, 32)
  update_us = _per_call(lambda: table.update_priorities(keys, priorities), 1_000)
  print(f"priority update of 32: {update_us:.0f} us", flush=True)
  if not args.eval_games:
    return
  spec = experiment.environment_spec()
  networks = builder.make_networks(spec)
  learner = builder.make_learner(networks, spec, table.as_iterator(32), table.update_priorities, 0)
  for eval_envs in (1, 10):
    evaluation = dataclasses.replace(experiment, eval_envs=min(eval_envs, args.eval_games)).validate()
    environments = evaluation.make_evaluation_environments()
    actor = builder.make_actor(builder.make_policy(networks), learner, 10_000, evaluation=True,
                               adder=[None] * len(environments))
    start = time.perf_counter()
    episodes = evaluation_loop(environments, actor).run_episodes(args.eval_games)
    seconds = time.perf_counter() - start
    steps = sum(e.episode_length for e in episodes)
    print(f"{len(episodes)} evaluation games on {len(environments)} environment(s): {seconds:.1f} s, {steps} steps, "
          f"{seconds / steps * 1e3:.3f} ms per step", flush=True)


if __name__ == "__main__":
  main()
