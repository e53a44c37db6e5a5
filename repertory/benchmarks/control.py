"""`repertory bench control`: a continuous-control benchmark of SAC with a pessimism penalty.

Runs every (penalty, seed) as its own `sync` run; finished runs are skipped, interrupted ones resumed
from their last checkpoint. Writes into --out:

  bench.json          the configuration (an --out holding a different one is refused; seeds and
                      penalties may be added)
  runs/<variant>/seed_<k>/   each run (config.json, metrics.csv, checkpoints, learning_curve.png)
  logs/               each run's console output
  curves.csv          variant, seed, step, return (evaluation returns; step = actor steps)
  final_scores.csv/.md  per variant: mean final return over seeds with a 95% bootstrap CI
                      (each run's final return = mean evaluation return over its last 10% of steps)
  comparison.csv/.md  ours beside published numbers for the task, where confirmed (control_references.py)
  curves.png          mean evaluation return over seeds with 95% bootstrap CIs
  provenance.json     machine, commit, date, wall clock
"""

import argparse
import dataclasses
import json
import os
from typing import Dict, List, Tuple

from repertory.benchmarks import curves as curve_tables
from repertory.benchmarks.base import Benchmark, Plan, Run
from repertory.errors import ConfigError

DEFAULT_ENV = "dmc:cheetah-run"
# Reduced settings for `--quick` (CI): small networks and batches, learning after 200 transitions.
QUICK_OVERRIDES: Tuple[Tuple[str, str], ...] = (
    ("hidden_sizes", "32,32"), ("batch_size", "32"), ("min_replay_size", "200"))


@dataclasses.dataclass(frozen=True)
class ControlSettings:
  """What must match for two invocations to share an --out (each (penalty, seed) is its own run)."""
  agent: str
  env: str
  steps: int
  eval_every: int
  eval_episodes: int
  agent_overrides: Tuple[Tuple[str, str], ...] = ()

  def fingerprint(self) -> Dict[str, object]:
    record = dataclasses.asdict(self)
    record["agent_overrides"] = [list(p) for p in sorted(self.agent_overrides)]
    return record

  def variant(self, penalty: str) -> str:
    return f"{self.agent}-{penalty}"

  def experiment(self, penalty: str, seed: int, run_dir: str):
    from repertory.launch.experiment import ExperimentConfig
    overrides = tuple(self.agent_overrides) + (("penalty", penalty),)
    return ExperimentConfig(agent=self.agent, env=self.env, run_dir=run_dir, launcher="sync", seed=seed,
                            max_actor_steps=self.steps, eval_every=self.eval_every,
                            eval_episodes=self.eval_episodes, agent_overrides=overrides, progress=False)


def _comparison(table, settings: ControlSettings):
  """Our final scores and the published numbers for the task, one row each."""
  import pandas as pd
  from repertory.benchmarks.control_references import UNCONFIRMED, references_for
  rows = []
  for _, r in table.iterrows():
    rows.append({"method": r["variant"], "source": "ours (this run)", "steps": int(r["last_step"]),
                 "score": round(float(r["mean"]), 1), "interval": f"95% CI [{r['ci_low']:.1f}, {r['ci_high']:.1f}]",
                 "seeds": int(r["seeds"]), "note": "mean over seeds of the mean eval return in the last 10% of steps"})
  for ref in references_for(settings.env):
    rows.append({"method": ref.method, "source": ref.source, "steps": ref.steps, "score": ref.mean,
                 "interval": f"{ref.spread_kind} {ref.spread:g}", "seeds": None, "note": ref.note})
  if not references_for(settings.env):
    rows.append({"method": "(none)", "source": "no published number confirmed for this task", "steps": None,
                 "score": None, "interval": "", "seeds": None, "note": "; ".join(UNCONFIRMED)})
  frame = pd.DataFrame(rows, columns=["method", "source", "steps", "score", "interval", "seeds", "note"])
  return frame.astype({"steps": "Int64", "seeds": "Int64"})


class Control(Benchmark):
  name = "control"
  help = "continuous-control benchmark (SAC, clipped or GPL pessimism)"
  description = __doc__
  resume_interrupted = True

  def add_arguments(self, p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="override an agent config field for every run, e.g. --config updates_per_actor_step=2 (repeatable)")
    p.add_argument("--quick", action="store_true", help="reduced mode for CI: small networks and batches "
                   "(QUICK_OVERRIDES), at most 2 evaluation episodes")

  def settings(self, record):
    return record.get("configuration") or {}

  def plan(self, args: argparse.Namespace) -> Plan:
    from repertory import agents
    if args.seeds < 1 or args.steps < 1 or args.eval_episodes < 1:
      raise ConfigError("--seeds, --steps and --eval-episodes must be >= 1")
    if args.first_seed < 0:
      raise ConfigError(f"--first-seed must be >= 0, got {args.first_seed}")
    penalties = [p.strip() for p in args.penalty.split(",") if p.strip()]
    if not penalties or len(set(penalties)) != len(penalties):
      raise ConfigError(f"--penalty '{args.penalty}' must name gpl and/or clipped, each once")
    overrides = agents.parse_overrides(args.config, {"penalty": "set the penalty with --penalty, not --config penalty=..."})
    if args.quick:
      given = {k for k, _ in overrides}
      overrides = tuple(p for p in QUICK_OVERRIDES if p[0] not in given) + overrides
    if not hasattr(agents.make_config(args.agent, dict(overrides)), "penalty"):
      raise ConfigError(f"agent '{args.agent}' has no pessimism penalty; use --agent sac")
    settings = ControlSettings(agent=args.agent, env=args.env, steps=args.steps,
                               eval_every=args.eval_every or max(1, args.steps // 20),
                               eval_episodes=min(args.eval_episodes, 2) if args.quick else args.eval_episodes,
                               agent_overrides=overrides)
    runs = []
    for penalty in penalties:
      variant = settings.variant(penalty)
      for seed in range(args.first_seed, args.first_seed + args.seeds):
        run_dir = os.path.join(args.out, "runs", variant, f"seed_{seed}")
        runs.append(Run(f"{variant} seed {seed}", run_dir, settings.experiment(penalty, seed, run_dir),
                        {"variant": variant, "seed": seed}))
    return Plan({"configuration": settings.fingerprint()}, tuple(runs))

  def report(self, args, plan: Plan, finished, missing, wall_clock_s: float) -> List[str]:
    from repertory.utils import final_scores, plotting, scores
    from repertory.utils.provenance import provenance
    out, settings = args.out, ControlSettings(**{**plan.record["configuration"], "agent_overrides": ()})
    curves = curve_tables.evaluation_curves(finished)
    written = [os.path.join(out, "curves.csv")]
    curves.to_csv(written[-1], index=False)
    title = f"{settings.agent} on {settings.env}: evaluation return (mean over seeds, 95% CI)"
    written.append(plotting.plot_curves_with_ci(curves, os.path.join(out, "curves.png"), title=title,
                                                xlabel="actor steps"))
    if not curves.empty:
      table = final_scores.final_score_table(curves)
      table.to_csv(os.path.join(out, "final_scores.csv"), index=False)
      with open(os.path.join(out, "final_scores.md"), "w") as f:
        f.write(scores.to_markdown(table, floatfmt=".1f", index=False) + "\n")
      comparison = _comparison(table, settings)
      comparison.to_csv(os.path.join(out, "comparison.csv"), index=False)
      with open(os.path.join(out, "comparison.md"), "w") as f:
        f.write(scores.to_markdown(comparison, floatfmt=".1f", index=False) + "\n")
      written += [os.path.join(out, name) for name in ("final_scores.csv", "final_scores.md", "comparison.csv",
                                                       "comparison.md")]
    runs = {os.path.relpath(r.run_dir, out): "finished" for r in finished}
    runs.update({os.path.relpath(r.run_dir, out): "missing" for r in missing})
    record = {**plan.record, "provenance": provenance(), "runs": runs, "wall_clock_s": round(wall_clock_s, 1)}
    written.append(os.path.join(out, "provenance.json"))
    with open(written[-1], "w") as f:
      json.dump(record, f, indent=2)
    return written


BENCHMARK = Control()
