"""How the cost of DER on Atari grows with the runs one process trains (`bench atari100k --runs-per-process K`):
K Pong runs (seeds 0..K-1, DER defaults but a 200-item warm-up) share one vmapped update and policy call per
step; the wall-clock of the steps between the first and the last learner row of metrics.csv (past the warm-up
and the compiles) gives the time per 1,000 steps, per-run learner updates/s, and the whole group's.

Usage: .venv/bin/python benchmarks/runs_per_process.py [--ks 1,2,4] [--steps 3200] [--out DIR]
Prints the machine, commit and date, then two lines per K, the second run 0's seconds by phase (the peak RSS is
the process's so far: run one K per call to read it per K). Figures belong in BUILD_NOTES.md ("Many runs, one
process"); `--out` (default: a temporary folder) keeps the runs.
"""

import argparse
import csv
import os
import resource
import sys
import tempfile
import time


def _learner_rows(run_dir: str):
  with open(os.path.join(run_dir, "metrics.csv")) as f:
    return [r for r in csv.DictReader(f) if r["source"] == "learner"]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--ks", default="1,2,4", help="runs per process to time, comma-separated")
  parser.add_argument("--steps", type=int, default=3_200, help="agent steps per run (learner rows every 1,000)")
  parser.add_argument("--game", default="Pong", help="Atari 100k game of every run")
  parser.add_argument("--out", default=None, help="folder for the runs (default: a temporary one)")
  args = parser.parse_args()
  try:
    ks = [int(k) for k in args.ks.split(",")]
  except ValueError:
    sys.exit(f"runs_per_process: --ks must be comma-separated integers, got '{args.ks}'")
  if not ks or min(ks) < 1 or args.steps < 2_200:
    sys.exit("runs_per_process: every K must be >= 1 and --steps >= 2200 (two learner rows past the warm-up)")
  from repertory.benchmarks.atari100k import experiment_config
  from repertory.launch.sync import run_sync, run_sync_group
  from repertory.utils.provenance import provenance
  from repertory.utils.timing import RUN_PHASES

  info = provenance()
  print(f"{info['machine']} | commit {info['commit']} | {info['date']} | {info['jax_devices']} | "
        f"{len(os.sched_getaffinity(0))} cores", flush=True)
  out = args.out or tempfile.mkdtemp(prefix="runs_per_process_")
  taken = [k for k in ks if os.path.exists(os.path.join(out, f"K{k}"))]
  if taken:
    sys.exit(f"runs_per_process: '{out}' already holds runs for K = {taken[0]}; pass another --out")
  overrides = {"min_replay_size": "200"}
  for k in ks:
    experiments = []
    for seed in range(k):
      run_dir = os.path.join(out, f"K{k}", f"seed{seed}")
      os.makedirs(run_dir)
      experiments.append(experiment_config("der", args.game, seed, run_dir, overrides, steps=args.steps,
                                           eval_episodes=1, max_episode_steps=2_000).validate())
    start = time.time()
    if k == 1:
      summary = run_sync(experiments[0])
    else:
      summary = run_sync_group(experiments, [None] * k, [False] * k)[0]
    rows = _learner_rows(experiments[0].run_dir)
    first, last = rows[0], rows[-1]
    seconds = float(last["time"]) - float(first["time"])
    steps = float(last["actor_steps"]) - float(first["actor_steps"])
    updates = float(last["learner_steps"]) - float(first["learner_steps"])
    per_1000 = 1_000 * seconds / steps
    print(f"K={k}: {per_1000:.1f} s per 1,000 steps of every run | per run {updates / seconds:.1f} updates/s | "
          f"group {k * updates / seconds:.1f} updates/s | {time.time() - start:.0f} s in all | peak RSS of the process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", flush=True)
    phases = ", ".join(f"{name} {summary.get(name + '_s', 0.0):.1f}" for name in RUN_PHASES)
    print(f"  seconds of run 0 by phase, whole run with warm-up and compiles: {phases}", flush=True)


if __name__ == "__main__":
  main()
