"""`repertory bench faults`: a soak of a `ray` run whose nodes are killed (SIGKILL) again and again.

One training run (DQN on CartPole by default) with a node picked at random killed every --kill-every-s
seconds, --kills times. Reported per kill: the node, when, how long until the driver had a new one
(`restart_s`, from the driver's row in metrics.csv) and until actor steps advanced again (`recover_s`),
what the new node recovered, and the actor and learner steps lost; in all: kills survived, whether the
run met its budget, the steps lost as a share of the budget. Writes faults.csv (one row per kill),
faults_summary.csv, faults_summary.png and provenance.json (machine, commit, date, settings) to --out.
"""

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np

from repertory.benchmarks.base import Benchmark, Plan
from repertory.errors import ConfigError

SERVICES = {"replay": "ReplayService", "learner": "LearnerService", "counter": "CounterService",
            "evaluator": "EvaluatorService", "actor": "ActorService"}


def node_processes(driver_pid: int, node: str) -> List[Any]:
  """The live processes of `node` (a key of SERVICES) among the descendants of a local `ray` run's driver."""
  import psutil
  found = []
  try:
    children = psutil.Process(driver_pid).children(recursive=True)
  except psutil.Error:
    return []
  for child in children:
    try:
      if f"ray::{SERVICES[node]}" in " ".join(child.cmdline()):
        found.append(child)
    except psutil.Error:
      continue
  return found


def kill_node(driver_pid: int, node: str) -> Optional[int]:
  """SIGKILLs one process of `node`; its pid, or None when none is running."""
  for process in node_processes(driver_pid, node):
    try:
      process.send_signal(signal.SIGKILL)
      return process.pid
    except Exception:  # noqa: BLE001 — it died meanwhile; try another
      continue
  return None


def driver_rows(run_dir: str) -> List[Dict[str, str]]:
  from repertory.utils.loggers import read_metrics
  path = os.path.join(run_dir, "metrics.csv")
  return read_metrics(path, "driver") if os.path.exists(path) else []


def counted_steps(run_dir: str) -> int:
  from repertory.launch.training import read_counts
  try:
    return int(read_counts(run_dir).get("actor_steps", 0))
  except (ValueError, TypeError):
    return 0


def wait_for(condition, timeout_s: float, process: subprocess.Popen, poll_s: float = 0.2) -> bool:
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline and process.poll() is None:
    if condition():
      return True
    time.sleep(poll_s)
  return condition()


class Faults(Benchmark):
  name = "faults"
  help = "kill random nodes of a ray run again and again: kills survived, steps lost, time to recover"
  description = __doc__
  record_file = "provenance.json"
  reuse_finished = False

  def add_arguments(self, p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", default="dqn", help="agent of the soaked run")
    p.add_argument("--env", default="gym:CartPole-v1", help="environment of the soaked run")
    p.add_argument("--num-actors", type=int, default=2, help="actors of the soaked run")
    p.add_argument("--max-actor-steps", type=int, default=60_000, help="the run's budget")
    p.add_argument("--kills", type=int, default=6, help="nodes to kill, one at a time")
    p.add_argument("--kill-every-s", type=float, default=8.0, help="seconds between kills (after each recovery)")
    p.add_argument("--nodes", default=",".join(SERVICES), help="node kinds to pick from")
    p.add_argument("--checkpoint-every-s", type=float, default=120.0, help="the run's checkpoint period")
    p.add_argument("--checkpoint-replay", action="store_true", help="the run checkpoints its replay table too")
    p.add_argument("--replay", default="auto", choices=("auto", "native", "reverb"), help="the run's replay backend")
    p.add_argument("--seed", type=int, default=0, help="seed of the run and of the choice of victims")
    p.add_argument("--config", action="append", default=["min_replay_size=200", "batch_size=32",
                                                         "updates_per_actor_step=0.25"],
                   metavar="KEY=VALUE", help="agent config overrides of the run")

  def settings(self, record):
    return {k: record.get(k) for k in ("agent", "env", "kills", "nodes")}

  def plan(self, args: argparse.Namespace) -> Plan:
    if args.report_only:
      raise ConfigError("--report-only: the faults benchmark measures as it runs; run it without --report-only")
    nodes = [n for n in args.nodes.split(",") if n]
    unknown = [n for n in nodes if n not in SERVICES]
    if unknown or not nodes:
      raise ConfigError(f"--nodes: unknown node kind(s) {', '.join(unknown) or '(none given)'}; choose from "
                        f"{', '.join(SERVICES)}")
    if args.kills < 1 or not args.kill_every_s > 0 or args.num_actors < 1 or args.max_actor_steps < 1:
      raise ConfigError("--kills, --kill-every-s, --num-actors and --max-actor-steps must be positive")
    record = {k: getattr(args, k) for k in ("agent", "env", "num_actors", "max_actor_steps", "kills", "kill_every_s",
                                            "checkpoint_every_s", "checkpoint_replay", "replay", "seed", "config")}
    record["nodes"] = nodes
    return Plan(record, (), context={"kills": [], "status": {}})

  def _command(self, args, run_dir: str) -> List[str]:
    command = [sys.executable, "-m", "repertory.cli", "train", "--launcher", "ray", "--agent", args.agent,
               "--env", args.env, "--num-actors", str(args.num_actors), "--max-actor-steps", str(args.max_actor_steps),
               "--eval-every", str(args.max_actor_steps), "--eval-episodes", "2", "--seed", str(args.seed),
               "--checkpoint-every-s", str(args.checkpoint_every_s), "--replay", args.replay,
               "--max-restarts", str(args.kills), "--run-dir", run_dir, "--overwrite", "--no-progress"]
    for override in args.config:
      command += ["--config", override]
    return command + (["--checkpoint-replay"] if args.checkpoint_replay else [])

  def measure(self, args: argparse.Namespace, plan: Plan) -> None:
    run_dir = os.path.join(args.out, "run")
    rng = np.random.default_rng(args.seed)
    kills, nodes = plan.context["kills"], plan.record["nodes"]
    with open(os.path.join(args.out, "train.log"), "w") as log:
      process = subprocess.Popen(self._command(args, run_dir), stdout=log, stderr=subprocess.STDOUT)
      try:
        if not wait_for(lambda: driver_rows(run_dir), 600, process):
          raise ConfigError(f"the soaked run did not start; see {os.path.join(args.out, 'train.log')}")
        for number in range(1, args.kills + 1):
          time.sleep(args.kill_every_s)
          if process.poll() is not None:
            break
          node = str(rng.choice(nodes))
          seen, steps = len(driver_rows(run_dir)), counted_steps(run_dir)
          killed_at = time.monotonic()
          pid = kill_node(process.pid, node)
          if pid is None:
            continue
          restarted = wait_for(lambda: any(r.get("event") == f"restarted {node}" or
                                           r.get("event", "").startswith(f"restarted {node}_")
                                           for r in driver_rows(run_dir)[seen:]), 120, process)
          advanced = wait_for(lambda: counted_steps(run_dir) > steps, 120, process)
          row = next((r for r in driver_rows(run_dir)[seen:] if r.get("event", "").startswith("restarted")), {})
          kill = {"kill": number, "node": row.get("node", node), "pid": pid, "actor_steps": steps,
                  "survived": int(restarted), "restart_s": float(row.get("restart_s") or "nan"),
                  "recover_s": round(time.monotonic() - killed_at, 2) if advanced else float("nan"),
                  "actor_steps_lost": int(float(row.get("actor_steps_lost") or 0)),
                  "learner_steps_lost": int(float(row.get("learner_steps_lost") or 0)),
                  "recovered": row.get("recovered", "")}
          kills.append(kill)
          print(f"  kill {number}/{args.kills}: {kill['node']} at {steps:,} actor steps; new node after "
                f"{kill['restart_s']:.1f} s, actors on after {kill['recover_s']:.1f} s; recovered {kill['recovered']}",
                flush=True)
        process.wait(timeout=3_600)
      finally:
        if process.poll() is None:
          process.send_signal(signal.SIGTERM)
          process.wait(timeout=120)
    with open(os.path.join(run_dir, "status.json")) as f:
      plan.context["status"] = json.load(f)

  def report(self, args, plan: Plan, finished, missing, wall_clock_s: float) -> List[str]:
    from repertory.benchmarks.throughput import Results, write_rows
    kills, status = plan.context["kills"], plan.context["status"]
    path = os.path.join(args.out, "faults.csv")
    columns = ["kill", "node", "pid", "actor_steps", "survived", "restart_s", "recover_s", "actor_steps_lost",
               "learner_steps_lost", "recovered"]
    with open(path, "w", newline="") as f:
      writer = csv.DictWriter(f, columns)
      writer.writeheader()
      writer.writerows(kills)
    results = Results()
    finished_run = status.get("status") == "finished" and status.get("actor_steps") == args.max_actor_steps
    results.add("kills", "kills made", len(kills), "kills")
    results.add("kills", "kills survived", sum(k["survived"] for k in kills), "kills")
    results.add("kills", "run finished at its budget", int(finished_run), "yes=1", status.get("status", "?"))
    for node in dict.fromkeys(k["node"].split("_")[0] for k in kills):
      chosen = [k for k in kills if k["node"].split("_")[0] == node]
      results.add("recovery", f"{node}: new node after (max)", max(k["restart_s"] for k in chosen), "s")
      results.add("recovery", f"{node}: actors stepping again after (max)", max(k["recover_s"] for k in chosen), "s")
    lost = sum(k["actor_steps_lost"] for k in kills)
    results.add("loss", "actor steps lost", lost, "steps", "re-run after a counter restart")
    results.add("loss", "actor steps lost / budget", 100 * lost / args.max_actor_steps, "%", "goal < 1 %")
    results.add("loss", "learner steps lost", sum(k["learner_steps_lost"] for k in kills), "steps",
                f"since the last checkpoint (every {args.checkpoint_every_s:g} s)")
    return [path] + write_rows(args.out, "faults_summary", results.rows, plan.record)


BENCHMARK = Faults()
