"""`repertory bench memory`: IMPALA with each recurrent core on a memory task, several seeds.

Trains IMPALA with each recurrent core (lstm, gtrxl, ppr, lru; none = feed-forward) for several seeds on
one task that needs memory (MiniGrid MemoryS7, POPGym, Memory Maze). Every (core, seed) is one run under
OUT/runs/<core>/seed_<seed>/, trained as `repertory train` trains it (finished runs are skipped, so an
interrupted benchmark continues where it stopped); then it writes
  OUT/curves.csv           variant (core), seed, step (environment steps), return (evaluation return)
  OUT/final_scores.csv/.md mean final return per core with 95% bootstrap CIs over seeds
                           (`repertory.utils.final_scores.final_score_table`, last 20% of each run)
  OUT/curves.png           mean ± 95% CI learning curves (`repertory.utils.plotting.plot_curves_with_ci`)
  OUT/bench.json           the benchmark's settings plus machine / commit / date of the last invocation.
The default launcher "vector" is `sync` with --num-envs environments stepped together (one batched policy
call per step; deterministic on CPU for a seed). An OUT written with other settings (env, steps, agent
overrides, evaluation, launcher) is refused; adding cores or seeds to an OUT is allowed.
"""

import argparse
import json
import os
from typing import Dict, List, Sequence, Tuple

from repertory.benchmarks import curves as curve_tables
from repertory.benchmarks.base import Benchmark, Plan, Run
from repertory.errors import ConfigError

LAUNCHERS = ("vector", "sync", "thread", "ray")
LAST_FRACTION = 0.2
# Agent settings for small CPU budgets (everything else: the IMPALA defaults of agents/impala/config.py).
# Adam instead of the paper's RMSProp, smaller networks and batches: chosen so that the LSTM core separates
# from `none` on RepeatPreviousEasy within a few hundred thousand steps on 2 CPU cores.
BENCH_AGENT_DEFAULTS: Tuple[Tuple[str, str], ...] = (
    ("optimizer", "adam"), ("learning_rate", "1e-3"), ("batch_size", "16"), ("unroll_length", "20"),
    ("core_size", "64"), ("hidden_sizes", "64"))

# Tasks known to need memory; a feed-forward policy is stuck near the listed chance-level return.
MEMORY_TASKS: Dict[str, str] = {
    "minigrid:MiniGrid-MemoryS7-v0": "a cue at the start picks the goal at the corridor's end; chance ~0.5 success",
    "popgym:RepeatPreviousEasy": "say the card seen 4 steps ago; memoryless return ~ -0.5",
    "popgym:RepeatFirstEasy": "repeat the first card; memoryless return ~ -0.5",
    "popgym:CountRecallEasy": "recall how often a card was seen; memoryless return ~ -0.9",
    "memory_maze:9x9": "Memory Maze 9x9 (needs EGL or OSMesa)",
}


def agent_overrides(core: str, extra: Sequence[Tuple[str, str]] = ()) -> Dict[str, str]:
  """BENCH_AGENT_DEFAULTS, then `extra`, then the core."""
  overrides = dict(BENCH_AGENT_DEFAULTS)
  overrides.update(dict(extra))
  overrides["core"] = core
  return overrides


def experiment_config(env: str, core: str, seed: int, steps: int, run_dir: str, launcher: str = "vector",
                      num_envs: int = 16, eval_every: int = 20_000, eval_episodes: int = 10,
                      extra_overrides: Sequence[Tuple[str, str]] = (), replay: str = "auto"):
  """One (core, seed) run of the memory benchmark as an ExperimentConfig."""
  from repertory.launch.experiment import ExperimentConfig
  return ExperimentConfig(
      agent="impala", env=env, run_dir=run_dir, launcher="sync" if launcher == "vector" else launcher, seed=seed,
      max_actor_steps=steps, num_actors=1, envs_per_actor=1 if launcher == "sync" else num_envs,
      eval_every=eval_every, eval_episodes=eval_episodes,
      agent_overrides=tuple(sorted(agent_overrides(core, extra_overrides).items())), progress=False, replay=replay)


def _cores(text: str) -> List[str]:
  from repertory.networks.cores import CORE_NAMES
  cores = [c.strip() for c in text.split(",") if c.strip()]
  if not cores:
    raise ConfigError("--cores is empty; pass e.g. --cores lstm,none")
  for core in cores:
    if core not in CORE_NAMES:
      raise ConfigError(f"unknown core '{core}' in --cores; choose from {', '.join(CORE_NAMES)}")
  if len(set(cores)) != len(cores):
    raise ConfigError(f"--cores names a core twice: {text}")
  return cores


class Memory(Benchmark):
  name = "memory"
  help = "IMPALA with each recurrent core on a memory task (curves, final scores with 95%% CIs, plots)"
  description = __doc__

  def add_arguments(self, p: argparse.ArgumentParser) -> None:
    p.add_argument("--cores", default="lstm,gtrxl,ppr,lru,none", help="comma-separated cores: lstm, gtrxl, ppr, lru, none")
    p.add_argument("--env", default="minigrid:MiniGrid-MemoryS7-v0",
                   help="memory task, e.g. minigrid:MiniGrid-MemoryS7-v0, popgym:RepeatPreviousEasy, memory_maze:9x9")
    p.add_argument("--seeds", type=int, default=3, help="seeds per core (0 .. seeds-1)")
    p.add_argument("--steps", type=int, default=500_000, help="environment steps per run")
    p.add_argument("--launcher", default="vector", choices=LAUNCHERS,
                   help="vector: sync with --num-envs environments stepped together (deterministic, fastest on CPU); "
                        "sync / thread / ray: the platform's launch types")
    p.add_argument("--num-envs", type=int, default=16, help="environments stepped together (vector launcher; "
                   "envs per actor for thread / ray)")
    p.add_argument("--replay", default="auto", choices=("auto", "native", "reverb"),
                   help="replay service of thread / ray runs (auto: Reverb where installed; each run's config.json records it)")
    p.add_argument("--eval-every", type=int, default=20_000, help="environment steps between evaluations")
    p.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="override an impala config field for every run, e.g. --config learning_rate=3e-4 (repeatable)")

  def settings(self, record):
    return record.get("settings") or {}

  def saved_run_config(self, saved):
    """Runs written by the benchmark's former loop of its own record launcher "vector": it was `sync` with
    `envs_per_actor` environments stepped together, as "vector" is now."""
    return {**saved, "launcher": "sync"} if saved.get("launcher") == "vector" else saved

  def plan(self, args: argparse.Namespace) -> Plan:
    from repertory import agents
    cores = _cores(args.cores)
    for name in ("seeds", "steps", "num_envs", "eval_every", "eval_episodes"):
      if getattr(args, name) < 1:
        raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    overrides = agents.parse_overrides(args.config, {"core": "--config core=... is set per run by --cores; drop it"})
    settings = {"env": args.env, "steps": args.steps, "launcher": args.launcher, "num_envs": args.num_envs,
                "eval_every": args.eval_every, "eval_episodes": args.eval_episodes,
                "agent_overrides": [list(p) for p in overrides]}
    runs = []
    for core in cores:
      for seed in range(args.seeds):
        run_dir = os.path.join(args.out, "runs", core, f"seed_{seed}")
        experiment = experiment_config(args.env, core, seed, args.steps, run_dir, args.launcher, args.num_envs,
                                       args.eval_every, args.eval_episodes, overrides, args.replay)
        runs.append(Run(f"{core} seed {seed}", run_dir, experiment, {"variant": core, "seed": seed},
                        title=f"IMPALA ({core} core) on {args.env}, seed {seed}"))
    return Plan({"settings": settings, "cores": cores, "seeds": args.seeds}, tuple(runs))

  def report(self, args, plan: Plan, finished, missing, wall_clock_s: float) -> List[str]:
    from repertory.utils.final_scores import final_score_table
    from repertory.utils.markdown import to_markdown
    from repertory.utils.plotting import plot_curves_with_ci
    from repertory.utils.provenance import provenance
    out, env, steps = args.out, plan.record["settings"]["env"], plan.record["settings"]["steps"]
    curves = curve_tables.evaluation_curves(finished)
    seeds = curves["seed"].nunique()
    curves.to_csv(os.path.join(out, "curves.csv"), index=False)
    table = final_score_table(curves, last_fraction=LAST_FRACTION)
    table.to_csv(os.path.join(out, "final_scores.csv"), index=False)
    partial = (f"Partial: {len(missing)} requested run(s) have no result yet: {', '.join(r.name for r in missing)}.\n\n"
               if missing else "")
    with open(os.path.join(out, "final_scores.md"), "w") as f:
      f.write(f"IMPALA cores on {env}, {steps:,} environment steps, {seeds} seeds; final score = mean "
              f"evaluation return over the last {int(LAST_FRACTION * 100)}% of each run, 95% bootstrap CI over seeds.\n\n")
      f.write(partial + to_markdown(table.set_index("variant"), floatfmt=".3f") + "\n")
    plot = plot_curves_with_ci(curves, os.path.join(out, "curves.png"),
                               title=f"IMPALA cores on {env} ({seeds} seeds, 95% CI)", xlabel="environment steps")
    record_path = os.path.join(out, self.record_file)
    with open(record_path, "w") as f:
      json.dump({**plan.record, "provenance": provenance(), "wall_clock_s": round(wall_clock_s, 1)}, f, indent=2)
    print(to_markdown(table.set_index("variant"), floatfmt=".3f"))
    return [os.path.join(out, "curves.csv"), os.path.join(out, "final_scores.csv"), os.path.join(out, "final_scores.md"),
            plot, record_path]


BENCHMARK = Memory()
