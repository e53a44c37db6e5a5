"""`repertory bench memory`: IMPALA with each recurrent core on a memory task, several seeds.

For every (core, seed) it trains one run under OUT/runs/<core>/seed_<seed>/ (skipping runs already
finished), then writes
  OUT/curves.csv           variant (core), seed, step (environment steps), return (evaluation return)
  OUT/final_scores.csv/.md mean final return per core with 95% bootstrap CIs over seeds
                           (`repertory.utils.final_scores.final_score_table`, last 20% of each run)
  OUT/curves.png           mean ± 95% CI learning curves (`repertory.utils.plotting.plot_curves_with_ci`)
  OUT/bench.json           the benchmark's settings plus machine / commit / date of the last run.
An OUT written with other settings (env, steps, agent overrides, evaluation, launcher) is refused;
adding cores or seeds to an OUT is allowed.
"""

import argparse
import json
import os
import shutil
import time
from typing import Any, Dict, List

from repertory.agents import parse_overrides
from repertory.errors import ConfigError

LAUNCHERS = ("vector", "sync", "thread", "ray")
SETTINGS = ("env", "steps", "launcher", "num_envs", "eval_every", "eval_episodes", "agent_overrides")
LAST_FRACTION = 0.2


def add_parser(subparsers) -> argparse.ArgumentParser:
  p = subparsers.add_parser(
      "memory", help="IMPALA with each recurrent core on a memory task (curves, final scores with 95%% CIs, plots)",
      formatter_class=argparse.ArgumentDefaultsHelpFormatter,
      description="Train IMPALA with each recurrent core (lstm, gtrxl, ppr, lru, none = feed-forward) for several "
                  "seeds on one memory task; write curves.csv, final_scores.csv/.md and curves.png to --out. "
                  "Finished runs are skipped, so an interrupted benchmark continues where it stopped.")
  p.add_argument("--cores", default="lstm,gtrxl,ppr,lru,none", help="comma-separated cores: lstm, gtrxl, ppr, lru, none")
  p.add_argument("--env", default="minigrid:MiniGrid-MemoryS7-v0",
                 help="memory task, e.g. minigrid:MiniGrid-MemoryS7-v0, popgym:RepeatPreviousEasy, memory_maze:9x9")
  p.add_argument("--seeds", type=int, default=3, help="seeds per core (0 .. seeds-1)")
  p.add_argument("--steps", type=int, default=500_000, help="environment steps per run")
  p.add_argument("--out", required=True, help="output directory (e.g. benchmarks/results/memory_s7)")
  p.add_argument("--launcher", default="vector", choices=LAUNCHERS,
                 help="vector: one process, --num-envs environments stepped together (deterministic, fastest on CPU); "
                      "sync / thread / ray: the platform's launch types")
  p.add_argument("--num-envs", type=int, default=16, help="environments stepped together (vector launcher; "
                 "envs per actor for thread / ray)")
  p.add_argument("--replay", default="auto", choices=("auto", "native", "reverb"),
                 help="replay service of thread / ray runs (auto: Reverb where installed; each run's config.json records it)")
  p.add_argument("--eval-every", type=int, default=20_000, help="environment steps between evaluations")
  p.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation")
  p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                 help="override an impala config field for every run, e.g. --config learning_rate=3e-4 (repeatable)")
  p.add_argument("--no-progress", action="store_true", help="print no per-evaluation lines")
  return p


def _cores(text: str) -> List[str]:
  from repertory.networks.cores import CORE_NAMES as CORES
  cores = [c.strip() for c in text.split(",") if c.strip()]
  if not cores:
    raise ConfigError("--cores is empty; pass e.g. --cores lstm,none")
  for core in cores:
    if core not in CORES:
      raise ConfigError(f"unknown core '{core}' in --cores; choose from {', '.join(CORES)}")
  if len(set(cores)) != len(cores):
    raise ConfigError(f"--cores names a core twice: {text}")
  return cores


def _validate(args: argparse.Namespace) -> Dict[str, Any]:
  from repertory import agents, environments
  cores = _cores(args.cores)
  for name in ("seeds", "steps", "num_envs", "eval_every", "eval_episodes"):
    if getattr(args, name) < 1:
      raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
  overrides = [list(p) for p in parse_overrides(args.config, {"core": "--config core=... is set per run by --cores; drop it"})]
  from repertory.experiments.memory import agent_overrides
  for core in cores:
    agents.make_builder("impala", agent_overrides(core, [tuple(p) for p in overrides]))  # bad fields fail here
  environment = environments.make(args.env, seed=0)
  environment.close()
  settings = {"env": args.env, "steps": args.steps, "launcher": args.launcher, "num_envs": args.num_envs,
              "eval_every": args.eval_every, "eval_episodes": args.eval_episodes, "agent_overrides": overrides}
  return {"cores": cores, "settings": settings}


def _check_out(out: str, settings: Dict[str, Any]) -> None:
  path = os.path.join(out, "bench.json")
  if not os.path.exists(path):
    if os.path.isdir(out) and os.listdir(out):
      raise ConfigError(f"--out '{out}' holds files that are not a memory benchmark; choose another --out")
    return
  with open(path) as f:
    saved = json.load(f).get("settings", {})
  differing = [k for k in SETTINGS if saved.get(k) != settings.get(k)]
  if differing:
    k = differing[0]
    raise ConfigError(f"--out '{out}' holds a memory benchmark with different settings ({k}: {saved.get(k)!r} there, "
                      f"{settings.get(k)!r} now); choose another --out or repeat its settings")


def _run_one(args, settings, core: str, seed: int, run_dir: str) -> None:
  overrides = tuple((k, v) for k, v in settings["agent_overrides"])
  if args.launcher == "vector":
    from repertory.experiments.memory import TrialConfig, agent_overrides, run_trial
    trial = TrialConfig(env=args.env, core=core, seed=seed, steps=args.steps, run_dir=run_dir,
                        agent_overrides=tuple(agent_overrides(core, overrides).items()), num_envs=args.num_envs,
                        eval_every=args.eval_every, eval_episodes=args.eval_episodes)
    run_trial(trial, progress=not args.no_progress)
    return
  from repertory.experiments.memory import agent_overrides, _status
  from repertory.launch.experiment import ExperimentConfig
  experiment = ExperimentConfig(
      agent="impala", env=args.env, run_dir=run_dir, launcher=args.launcher, seed=seed, max_actor_steps=args.steps,
      num_actors=1, envs_per_actor=1 if args.launcher == "sync" else args.num_envs, eval_every=args.eval_every,
      eval_episodes=args.eval_episodes, agent_overrides=tuple(agent_overrides(core, overrides).items()),
      progress=not args.no_progress, replay=args.replay).validate().with_resolved_replay()
  spec = experiment.environment_spec()
  os.makedirs(run_dir, exist_ok=True)
  experiment.save(os.path.join(run_dir, "config.json"), spec)
  _status(run_dir, "running")
  try:
    if args.launcher == "sync":
      from repertory.launch.sync import run_sync
      summary = run_sync(experiment, spec)
    else:
      from repertory.launch.distributed import run_distributed
      summary = run_distributed(experiment, spec)
  except BaseException as e:
    _status(run_dir, "failed", error=f"{type(e).__name__}: {e}")
    raise
  _status(run_dir, "finished", **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))})


def run(args: argparse.Namespace) -> int:
  """Runs the missing (core, seed) trials, then writes curves, the final-score table and the plot."""
  import pandas as pd
  from repertory.experiments.memory import evaluation_curve, finished
  from repertory.utils.plotting import plot_curves_with_ci
  from repertory.utils.provenance import provenance
  from repertory.utils.final_scores import final_score_table
  from repertory.utils.markdown import to_markdown

  checked = _validate(args)
  cores, settings = checked["cores"], checked["settings"]
  out = args.out
  _check_out(out, settings)
  os.makedirs(out, exist_ok=True)
  bench_path = os.path.join(out, "bench.json")
  record = {"settings": settings, "cores": cores, "seeds": args.seeds}
  with open(bench_path, "w") as f:
    json.dump(record, f, indent=2)
  start = time.time()
  for core in cores:
    for seed in range(args.seeds):
      run_dir = os.path.join(out, "runs", core, f"seed_{seed}")
      if finished(run_dir):
        print(f"skip {core} seed {seed}: finished in {run_dir}", flush=True)
        continue
      if os.path.isdir(run_dir):
        shutil.rmtree(run_dir)  # an interrupted run: start it again
      print(f"run {core} seed {seed} on {args.env} for {args.steps:,} steps -> {run_dir}", flush=True)
      _run_one(args, settings, core, seed, run_dir)
  frames = []
  for core in cores:
    for seed in range(args.seeds):
      curve = evaluation_curve(os.path.join(out, "runs", core, f"seed_{seed}"))
      frames.append(curve.assign(variant=core, seed=seed)[["variant", "seed", "step", "return"]])
  curves = pd.concat(frames, ignore_index=True)
  curves.to_csv(os.path.join(out, "curves.csv"), index=False)
  table = final_score_table(curves, last_fraction=LAST_FRACTION)
  table.to_csv(os.path.join(out, "final_scores.csv"), index=False)
  with open(os.path.join(out, "final_scores.md"), "w") as f:
    f.write(f"IMPALA cores on {args.env}, {args.steps:,} environment steps, {args.seeds} seeds; final score = mean "
            f"evaluation return over the last {int(LAST_FRACTION * 100)}% of each run, 95% bootstrap CI over seeds.\n\n")
    f.write(to_markdown(table.set_index("variant"), floatfmt=".3f") + "\n")
  plot = plot_curves_with_ci(curves, os.path.join(out, "curves.png"),
                             title=f"IMPALA cores on {args.env} ({args.seeds} seeds, 95% CI)",
                             xlabel="environment steps")
  record.update(provenance=provenance(), wall_clock_s=round(time.time() - start, 1))
  with open(bench_path, "w") as f:
    json.dump(record, f, indent=2)
  print(to_markdown(table.set_index("variant"), floatfmt=".3f"))
  print(f"curves: {os.path.join(out, 'curves.csv')}  plot: {plot}")
  return 0
