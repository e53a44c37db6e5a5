"""Which packing trains the Atari 100k suite fastest on this host. For each `KxW` (K runs per process, W worker
processes) one call of `bench atari100k --games atari100k --seeds 1 --runs-per-process K --workers W
--stop-after S` from scratch, with a 200-item warm-up so that the updates start at once. The steps its runs
counted in the call's second half (past start-up and compilation; over the times their counters wrote them)
are the suite's run-steps/s at that packing, and the suite's steps over that rate its training time. On a GPU
host the processes share one device, so this is where the packing shows whether they wait for each other
there (learning ms per step) or for the host. Three packings of 120 s fit one 10-minute command.

Usage: python benchmarks/suite_packing.py [--packings 2x13,4x8,8x4] [--seconds 120] [--out DIR]
                                          [--games atari100k] [--seeds 1]
On a GPU host, with the wheels of .whl/:  SCRIPT=suite_packing; . benchmarks/device_setup.sh;
                                          "$PYTHON" benchmarks/suite_packing.py
Prints the machine, commit and date, then a line per packing, and writes DIR/packing.csv (default DIR: a
temporary folder; each call's runs in DIR/KxW, its output in DIR/KxW.log). Figures belong in BUILD_NOTES.md
("Host work of an Atari step") with the device named.
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, Tuple

FIELDS = ("packing", "runs_per_process", "workers", "seconds", "wall_s", "exit", "run_steps", "call_run_steps_per_s",
          "run_steps_per_s", "suite_training_min", "policy_ms", "environment_ms", "learning_ms")


def _packings(text: str):
  try:
    packings = [tuple(int(n) for n in item.split("x")) for item in text.split(",")]
  except ValueError:
    packings = []
  if not packings or any(len(p) != 2 or min(p) < 1 for p in packings):
    sys.exit(f"suite_packing: --packings must be KxW pairs of positive integers, e.g. 2x13,4x8, got '{text}'")
  return packings


def _counted(out: str) -> Dict[str, Tuple[int, float]]:
  """run dir name → (actor steps its counter last wrote, when it wrote them)."""
  from repertory.launch.training import read_counts
  runs = os.path.join(out, "runs")
  found = {}
  for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
    path = os.path.join(runs, name, "counter.json")
    if os.path.exists(path):
      found[name] = (int(read_counts(os.path.join(runs, name)).get("actor_steps", 0)), os.path.getmtime(path))
  return found


def _steady_rate(middle: Dict[str, Tuple[int, float]], end: Dict[str, Tuple[int, float]]) -> float:
  """Run-steps/s of the runs between two readings of their counters: past start-up and compilation."""
  rate = 0.0
  for name, (steps, when) in middle.items():
    later_steps, later = end.get(name, (steps, when))
    if later > when:
      rate += (later_steps - steps) / (later - when)
  return rate


def _probe(out: str, k: int, w: int, args) -> dict:
  """One call at packing KxW in `out`: its runs' steps over the call and over its second half, and their
  phase seconds."""
  from repertory.launch.training import read_counts
  env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")  # the processes share the device
  env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.expanduser("~/.cache/repertory/jax"))  # as the suite's calls
  command = [sys.executable, "-m", "repertory.cli", "bench", "atari100k", "--out", out, "--games", args.games,
             "--seeds", str(args.seeds), "--runs-per-process", str(k), "--workers", str(w), "--no-progress",
             "--stop-after", str(args.seconds), "--config", "min_replay_size=200"]
  log_path = f"{out}.log"
  start = time.time()
  with open(log_path, "w") as log:
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
      time.sleep(args.seconds / 2)
      middle = _counted(out)
      while not middle and process.poll() is None:  # a slow start: from the first count on
        time.sleep(1.0)
        middle = _counted(out)
      code = process.wait(timeout=args.seconds + 600)
    finally:
      if process.poll() is None:
        process.terminate()
        process.wait(60)
  wall = time.time() - start
  if code not in (0, 75):  # 75: stopped by --stop-after, as meant
    sys.exit(f"suite_packing: the call at packing {k}x{w} failed (exit {code}); see {log_path}")
  runs = [read_counts(os.path.join(out, "runs", name)) for name in sorted(os.listdir(os.path.join(out, "runs")))]
  steps = sum(int(c.get("actor_steps", 0)) for c in runs)
  phase = {p: sum(float(c.get(f"{p}_s", 0.0)) for c in runs) for p in ("policy", "environment", "learning")}
  per_step = lambda seconds: round(1e3 * seconds / steps, 3) if steps else ""  # noqa: E731
  rate = _steady_rate(middle, _counted(out))
  return {"packing": f"{k}x{w}", "runs_per_process": k, "workers": w, "seconds": args.seconds,
          "wall_s": round(wall, 1), "exit": code, "run_steps": steps, "call_run_steps_per_s": round(steps / wall, 1),
          "run_steps_per_s": round(rate, 1),
          "suite_training_min": round(len(runs) * 100_000 / rate / 60, 1) if rate > 0 else "",
          **{f"{p}_ms": per_step(s) for p, s in phase.items()}}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--packings", default="2x13,4x8,8x4", help="KxW: K runs per process, W worker processes")
  parser.add_argument("--seconds", type=float, default=120.0, help="--stop-after of each call")
  parser.add_argument("--games", default="atari100k", help="bench atari100k --games")
  parser.add_argument("--seeds", type=int, default=1, help="bench atari100k --seeds")
  parser.add_argument("--out", default=None, help="folder for the calls' runs and packing.csv (default: temporary)")
  args = parser.parse_args()
  packings = _packings(args.packings)
  if not args.seconds > 0 or args.seeds < 1:
    sys.exit("suite_packing: --seconds must be > 0 and --seeds >= 1")
  out = args.out or tempfile.mkdtemp(prefix="suite_packing_")
  os.makedirs(out, exist_ok=True)
  taken = [f"{k}x{w}" for k, w in packings if os.path.exists(os.path.join(out, f"{k}x{w}"))]
  if taken:
    sys.exit(f"suite_packing: '{out}' already holds the runs of packing {taken[0]}; pass another --out")
  from repertory.utils.provenance import provenance
  info = provenance()
  print(f"{info['machine']} | commit {info['commit']} | {info['date']} | {info['jax_devices']} | "
        f"{len(os.sched_getaffinity(0))} cores", flush=True)
  rows = []
  for k, w in packings:
    row = _probe(os.path.join(out, f"{k}x{w}"), k, w, args)
    rows.append(row)
    print(f"{row['packing']}: {row['run_steps']:,} run-steps in {row['wall_s']} s (exit {row['exit']}), "
          f"{row['run_steps_per_s']} run-steps/s, suite training ~{row['suite_training_min']} min; ms per run-step: "
          f"policy {row['policy_ms']}, environment {row['environment_ms']}, learning {row['learning_ms']}", flush=True)
  with open(os.path.join(out, "packing.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
  print(f"wrote {os.path.join(out, 'packing.csv')}")


if __name__ == "__main__":
  main()
