"""Time one DER update (batch 32, Atari 84x84x4) per encoder, and the steps/s of a short sync run.

Usage: .venv/bin/python benchmarks/der_update_speed.py [--updates 50] [--sync-steps 1000]
Prints one line per measurement (machine and date first). Results belong in reports, not in git.
"""

import argparse
import itertools
import tempfile
import time

import jax
import numpy as np


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--updates", type=int, default=50, help="timed updates per encoder (after 3 warm-up updates)")
  parser.add_argument("--sync-steps", type=int, default=1000, help="agent steps of the sync run (0 skips it)")
  parser.add_argument("--encoders", default="der,alix,hyperbolic", help="encoders to time")
  args = parser.parse_args()
  from repertory import agents, environments
  from repertory.environments.specs import make_environment_spec
  from repertory.replay.adders import Transition
  from repertory.replay.types import ReplayBatch
  from repertory.utils.provenance import provenance
  info = provenance()
  print(f"{info['machine']} | commit {info['commit']} | {info['date']} | {info['jax_devices']}", flush=True)
  env = environments.make("atari:Pong", seed=0)
  spec = make_environment_spec(env)
  env.close()
  rng = np.random.default_rng(0)
  obs = rng.integers(0, 255, (32,) + spec.observations.shape, dtype=np.uint8)
  data = Transition(obs, rng.integers(0, spec.actions.num_values, 32).astype(np.int32),
                    rng.uniform(-1, 1, 32).astype(np.float32), np.full(32, 0.9, np.float32), obs[::-1].copy())
  batch = ReplayBatch(np.arange(1, 33, dtype=np.uint64), np.full(32, 1 / 64), np.full(32, 64), data)
  batch = batch._replace(data=jax.device_put(batch.data))
  for encoder in args.encoders.split(","):
    builder = agents.make_builder("der", {"encoder": encoder})
    learner = builder.make_learner(builder.make_networks(spec), spec, itertools.repeat(batch), lambda k, p: None, 0)
    start = time.perf_counter()
    jax.block_until_ready(learner.step())
    compile_s = time.perf_counter() - start
    for _ in range(2):
      learner.step()
    jax.block_until_ready(learner.get_variables())
    start = time.perf_counter()
    for _ in range(args.updates):
      learner.step()
    jax.block_until_ready(learner.get_variables())
    per_update = (time.perf_counter() - start) / args.updates
    print(f"DER update, encoder={encoder}: {1e3 * per_update:.1f} ms/update ({1 / per_update:.1f} updates/s), "
          f"first call incl. compile {compile_s:.1f} s", flush=True)
  if args.sync_steps:
    from repertory.launch.experiment import ExperimentConfig
    from repertory.launch.sync import run_sync
    with tempfile.TemporaryDirectory() as run_dir:
      experiment = ExperimentConfig(agent="der", env="atari:Pong", run_dir=run_dir, max_actor_steps=args.sync_steps,
                                    eval_every=10 * args.sync_steps, eval_episodes=1, progress=False,
                                    agent_overrides=(("min_replay_size", "200"),)).validate()
      start = time.perf_counter()
      summary = run_sync(experiment, log_every=100)
      wall = time.perf_counter() - start
      from repertory.utils.loggers import read_metrics
      rows = read_metrics(f"{run_dir}/metrics.csv", "learner")
      t0, t1 = float(rows[0]["time"]), float(rows[-1]["time"])
      s0, s1 = float(rows[0]["actor_steps"]), float(rows[-1]["actor_steps"])
      print(f"sync run, der encoder, Pong: {summary['actor_steps']} steps, {summary['learner_steps']} updates in {wall:.1f} s "
            f"(incl. compile and 1 evaluation game); steady state {(s1 - s0) / (t1 - t0):.1f} env steps/s "
            f"with 1 update per step", flush=True)


if __name__ == "__main__":
  main()
