"""`repertory bench control`: a continuous-control benchmark of SAC with a pessimism penalty.

Runs every (penalty, seed) as its own `sync` run (`repertory train --launcher sync`) in a separate
process, up to --workers at a time; finished runs are skipped, interrupted ones resumed from their last
checkpoint. Writes into --out:

  bench.json          the configuration (an --out holding a different one is rejected)
  runs/<variant>/seed_<k>/   each run (config.json, metrics.csv, checkpoints, learning_curve.png)
  logs/               each run's console output
  curves.csv          variant, seed, step, return (evaluation returns; step = actor steps)
  final_scores.csv/.md  per variant: mean final return over seeds with a 95% bootstrap CI
                      (each run's final return = mean evaluation return over its last 10% of steps)
  comparison.csv/.md  ours beside published numbers for the task, where confirmed (experiments/control.py)
  curves.png          mean evaluation return over seeds with 95% bootstrap CIs
  provenance.json     machine, commit, date, wall clock
"""

import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import List, Optional, Tuple

from repertory.agents import parse_overrides
from repertory.errors import ConfigError
from repertory.launch.lifetime import child_environment, interrupt_on_sigterm

DEFAULT_ENV = "dmc:cheetah-run"


def add_parser(subparsers) -> argparse.ArgumentParser:
  p = subparsers.add_parser("control", help="continuous-control benchmark (SAC, clipped or GPL pessimism)",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=__doc__)
  p.add_argument("--agent", default="sac", help="agent name (needs a `penalty` config field: sac)")
  p.add_argument("--penalty", default="gpl", help="pessimism penalty: gpl or clipped, or both comma-separated "
                 "(gpl,clipped) to compare them in one output folder")
  p.add_argument("--env", default=DEFAULT_ENV, help="continuous-action environment, e.g. dmc:cheetah-run, "
                 "dmc:cheetah-run?pixels=84, gym:Pendulum-v1")
  p.add_argument("--seeds", type=int, default=3, help="number of seeds per penalty")
  p.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed+1, ...")
  p.add_argument("--steps", type=int, default=100_000, help="actor (agent) steps per run")
  p.add_argument("--eval-every", type=int, default=None, help="actor steps between evaluations (default: steps/20)")
  p.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation")
  p.add_argument("--workers", type=int, default=1, help="runs at the same time (one process each)")
  p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                 help="override an agent config field for every run, e.g. --config updates_per_actor_step=2 (repeatable)")
  p.add_argument("--out", required=True, help="output folder (created; reused only with the same configuration)")
  p.add_argument("--quick", action="store_true", help="reduced mode for CI: small networks and batches "
                 "(experiments/control.py QUICK_OVERRIDES), at most 2 evaluation episodes")
  p.add_argument("--run-timeout", type=float, default=None, help="seconds one run may take before it is stopped")
  return p


def _benchmark(args: argparse.Namespace):
  from repertory import agents
  from repertory.experiments.control import QUICK_OVERRIDES, ControlBenchmark
  if args.seeds < 1 or args.steps < 1 or args.workers < 1 or args.eval_episodes < 1:
    raise ConfigError("--seeds, --steps, --workers and --eval-episodes must be >= 1")
  if args.first_seed < 0:
    raise ConfigError(f"--first-seed must be >= 0, got {args.first_seed}")
  penalties = [p.strip() for p in args.penalty.split(",") if p.strip()]
  if not penalties or len(set(penalties)) != len(penalties):
    raise ConfigError(f"--penalty '{args.penalty}' must name gpl and/or clipped, each once")
  overrides = parse_overrides(args.config, {"penalty": "set the penalty with --penalty, not --config penalty=..."})
  if args.quick:
    given = {k for k, _ in overrides}
    overrides = tuple(p for p in QUICK_OVERRIDES if p[0] not in given) + overrides
  config = agents.make_config(args.agent, dict(overrides))
  if not hasattr(config, "penalty"):
    raise ConfigError(f"agent '{args.agent}' has no pessimism penalty; use --agent sac")
  for penalty in penalties:
    agents.make_config(args.agent, {**dict(overrides), "penalty": penalty})  # unknown penalties fail here
  eval_every = args.eval_every or max(1, args.steps // 20)
  eval_episodes = min(args.eval_episodes, 2) if args.quick else args.eval_episodes
  bench = ControlBenchmark(agent=args.agent, env=args.env, steps=args.steps, eval_every=eval_every,
                           eval_episodes=eval_episodes, agent_overrides=overrides)
  return bench, penalties


def _prepare_out(out: str, bench) -> None:
  path = os.path.join(out, "bench.json")
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    wanted = json.loads(json.dumps(bench.fingerprint()))
    if saved.get("configuration") != wanted:
      old = saved.get("configuration") or {}
      diffs = [f"{k}: {old.get(k)!r} there vs {wanted.get(k)!r} now" for k in wanted if old.get(k) != wanted.get(k)]
      raise ConfigError(f"--out '{out}' holds a different control benchmark ({'; '.join(diffs) or 'unreadable'}); "
                        "choose another --out or repeat its flags")
  elif os.path.isdir(out) and os.listdir(out):
    raise ConfigError(f"--out '{out}' holds files that are not a control benchmark; choose an empty or new folder")
  os.makedirs(os.path.join(out, "logs"), exist_ok=True)
  if not os.path.exists(path):
    with open(path, "w") as f:
      json.dump({"configuration": bench.fingerprint()}, f, indent=2)


def _status(run_dir: str) -> Optional[str]:
  try:
    with open(os.path.join(run_dir, "status.json")) as f:
      return json.load(f).get("status")
  except (OSError, ValueError):
    return None


def _command(bench, penalty: str, seed: int, run_dir: str) -> List[str]:
  command = [sys.executable, "-m", "repertory.launch.cli", "train", "--agent", bench.agent, "--env", bench.env,
             "--launcher", "sync", "--seed", str(seed), "--max-actor-steps", str(bench.steps),
             "--eval-every", str(bench.eval_every), "--eval-episodes", str(bench.eval_episodes),
             "--run-dir", run_dir, "--no-progress"]
  for key, value in tuple(bench.agent_overrides) + (("penalty", penalty),):
    command += ["--config", f"{key}={value}"]
  has_checkpoint = os.path.isdir(os.path.join(run_dir, "checkpoints")) and bool(
      os.listdir(os.path.join(run_dir, "checkpoints")))
  if os.path.exists(os.path.join(run_dir, "config.json")) and has_checkpoint:
    command.append("--resume")
  elif os.path.isdir(run_dir) and os.listdir(run_dir):
    command.append("--overwrite")
  return command


class _RunProcesses:
  """The runs' `repertory train` processes, so that an interrupted bench stops them instead of waiting."""

  def __init__(self):
    self._lock = threading.Lock()
    self._processes = set()
    self._stopped = False

  def start(self, command: List[str], **kwargs) -> Optional[subprocess.Popen]:
    with self._lock:
      if self._stopped:
        return None
      process = subprocess.Popen(command, **kwargs)
      self._processes.add(process)
      return process

  def finished(self, process: subprocess.Popen) -> None:
    with self._lock:
      self._processes.discard(process)

  def stop_all(self, grace_s: float = 10.0) -> None:
    with self._lock:
      self._stopped = True
      processes = list(self._processes)
    for process in processes:
      process.terminate()
    for process in processes:
      try:
        process.wait(timeout=grace_s)
      except subprocess.TimeoutExpired:
        process.kill()


def _run_one(bench, penalty: str, seed: int, run_dir: str, log_path: str, workers: int,
             timeout: Optional[float], processes: _RunProcesses) -> Tuple[str, int, float]:
  env = child_environment(os.environ)
  if workers > 1:  # one XLA thread pool per run, so parallel runs do not fight over the cores
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                        "intra_op_parallelism_threads=1").strip()
  start = time.time()
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  with open(log_path, "a") as log:
    process = processes.start(_command(bench, penalty, seed, run_dir), stdout=log, stderr=subprocess.STDOUT,
                              env=env, cwd=repo)
    if process is None:  # the bench is being stopped
      return run_dir, 130, 0.0
    try:
      returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()
      log.write(f"\nbench control: stopped after {timeout} s\n")
      returncode = 124
    finally:
      processes.finished(process)
  return run_dir, returncode, time.time() - start


def _curves(runs: List[Tuple[str, int, str]]):
  """Evaluation rows of every finished run → DataFrame(variant, seed, step, return)."""
  import pandas as pd
  from repertory.utils.loggers import read_metrics
  rows = []
  for variant, seed, run_dir in runs:
    path = os.path.join(run_dir, "metrics.csv")
    if _status(run_dir) != "finished" or not os.path.exists(path):
      continue
    for row in read_metrics(path, "evaluator"):
      if row.get("episode_return") not in (None, ""):
        rows.append({"variant": variant, "seed": seed, "step": int(float(row["actor_steps"])),
                     "return": float(row["episode_return"])})
  frame = pd.DataFrame(rows, columns=["variant", "seed", "step", "return"])
  return frame.drop_duplicates(["variant", "seed", "step"], keep="last").sort_values(["variant", "seed", "step"])


def _comparison(table, bench):
  """Our final scores and the published numbers for the task, one row each."""
  import pandas as pd
  from repertory.experiments.control import UNCONFIRMED, references_for
  rows = []
  for _, r in table.iterrows():
    rows.append({"method": r["variant"], "source": "ours (this run)", "steps": int(r["last_step"]),
                 "score": round(float(r["mean"]), 1), "interval": f"95% CI [{r['ci_low']:.1f}, {r['ci_high']:.1f}]",
                 "seeds": int(r["seeds"]), "note": "mean over seeds of the mean eval return in the last 10% of steps"})
  for ref in references_for(bench.env):
    rows.append({"method": ref.method, "source": ref.source, "steps": ref.steps, "score": ref.mean,
                 "interval": f"{ref.spread_kind} {ref.spread:g}", "seeds": None, "note": ref.note})
  if not references_for(bench.env):
    rows.append({"method": "(none)", "source": "no published number confirmed for this task", "steps": None,
                 "score": None, "interval": "", "seeds": None, "note": "; ".join(UNCONFIRMED)})
  frame = pd.DataFrame(rows, columns=["method", "source", "steps", "score", "interval", "seeds", "note"])
  return frame.astype({"steps": "Int64", "seeds": "Int64"})


def run(args: argparse.Namespace) -> int:
  bench, penalties = _benchmark(args)
  bench.experiment(penalties[0], args.first_seed, os.path.join(args.out, "validate")).validate().environment_spec()
  out = args.out
  _prepare_out(out, bench)
  runs, todo = [], []
  for penalty in penalties:
    variant = bench.variant(penalty)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
      run_dir = os.path.join(out, "runs", variant, f"seed_{seed}")
      runs.append((variant, seed, run_dir))
      if _status(run_dir) == "finished":
        print(f"  {variant} seed {seed}: finished earlier, skipped", flush=True)
      else:
        todo.append((penalty, seed, run_dir, os.path.join(out, "logs", f"{variant}_seed_{seed}.log")))
  print(f"bench control: {bench.agent} on {bench.env}, {bench.steps:,} steps, penalties {', '.join(penalties)}, "
        f"{len(runs)} runs ({len(todo)} to run, {args.workers} at a time)", flush=True)
  start = time.time()
  failed = []
  processes = _RunProcesses()
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.workers)
  previous = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
  try:
    futures = [pool.submit(_run_one, bench, penalty, seed, run_dir, log, args.workers, args.run_timeout, processes)
               for penalty, seed, run_dir, log in todo]
    for future in concurrent.futures.as_completed(futures):
      run_dir, returncode, seconds = future.result()
      ok = returncode == 0 and _status(run_dir) == "finished"
      print(f"  {os.path.relpath(run_dir, out)}: {'finished' if ok else f'FAILED (exit {returncode})'} "
            f"in {seconds:.0f} s", flush=True)
      if not ok:
        failed.append(run_dir)
  except BaseException:  # Ctrl-C or SIGTERM: stop the runs now instead of waiting for them to finish
    pool.shutdown(wait=False, cancel_futures=True)
    processes.stop_all()
    raise
  finally:
    signal.signal(signal.SIGTERM, previous)
  pool.shutdown()
  wall = time.time() - start
  written = write_results(out, bench, runs, wall_clock_s=wall)
  for path in written:
    print(f"  wrote {path}")
  if failed:
    print(f"bench control: {len(failed)} run(s) failed; see {os.path.join(out, 'logs')}", file=sys.stderr)
    return 1
  return 0


def write_results(out: str, bench, runs: List[Tuple[str, int, str]], wall_clock_s: float = 0.0) -> List[str]:
  """curves.csv, final_scores.csv/.md, comparison.csv/.md, curves.png, provenance.json from finished runs."""
  from repertory.utils import final_scores, plotting, scores
  from repertory.utils.provenance import provenance
  curves = _curves(runs)
  written = [os.path.join(out, "curves.csv")]
  curves.to_csv(written[-1], index=False)
  title = f"{bench.agent} on {bench.env}: evaluation return (mean over seeds, 95% CI)"
  written.append(plotting.plot_curves_with_ci(curves, os.path.join(out, "curves.png"), title=title,
                                              xlabel="actor steps"))
  if not curves.empty:
    table = final_scores.final_score_table(curves)
    table.to_csv(os.path.join(out, "final_scores.csv"), index=False)
    with open(os.path.join(out, "final_scores.md"), "w") as f:
      f.write(scores.to_markdown(table, floatfmt=".1f", index=False) + "\n")
    comparison = _comparison(table, bench)
    comparison.to_csv(os.path.join(out, "comparison.csv"), index=False)
    with open(os.path.join(out, "comparison.md"), "w") as f:
      f.write(scores.to_markdown(comparison, floatfmt=".1f", index=False) + "\n")
    written += [os.path.join(out, name) for name in ("final_scores.csv", "final_scores.md", "comparison.csv",
                                                     "comparison.md")]
  record = {"configuration": bench.fingerprint(), "provenance": provenance(),
            "runs": {os.path.relpath(d, out): _status(d) for _, _, d in runs}, "wall_clock_s": round(wall_clock_s, 1)}
  written.append(os.path.join(out, "provenance.json"))
  with open(written[-1], "w") as f:
    json.dump(record, f, indent=2)
  return written
