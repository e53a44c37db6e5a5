"""`repertory bench plasticity`: plasticity loss on a changing task, and the remedies side by side.

Each run trains an agent (DQN by default) on a vector task whose observation entries are permuted anew
every --permute-every environment steps (`?permute_every=N`, `repertory.environments.nonstationary`), or
on a sequence of Atari games that moves to the next game every --permute-every steps
(`--agent der --env atari:Pong,Boxing,Freeway`, `repertory.environments.atari_sequence`), with one
intervention, logging the plasticity diagnostics as it goes. Every (intervention, seed) is its own
`sync` run; finished runs are skipped, interrupted ones resumed. Writes into --out:

  bench.json              the configuration (an --out holding a different one is refused)
  runs/<variant>/seed_<k>/  each run (config.json, metrics.csv, learning_curve.png, diagnostics.png)
  curves.csv / curves.png   actor episode returns over actor steps, binned, mean over seeds with 95% CIs;
                            dashed lines mark the task changes
  diagnostics.csv           variant, seed, learner_steps, srank, probe_loss, dormant (mean over layers)
  srank.png, probe_loss.png, dormant.png   each diagnostic over learner updates, mean over seeds with 95% CIs
  final_scores.csv/.md      per variant: mean return over the last 10% of steps (the last task), 95% CI
  provenance.json           machine, commit, date, wall clock

Interventions (--interventions, comma-separated): none; injection (plasticity injection at
--injection-step updates, Nikishin et al. 2023, arXiv 2305.15555); layer_norm (Lyle et al. 2023,
arXiv 2303.01486); shrink_perturb (every --reset-period updates, Ash & Adams 2020, arXiv 1910.08475);
redo (recycling τ-dormant units every --redo-period updates, Sokar et al. 2023, arXiv 2302.12902).
The same command runs on a GPU host; `--env` takes any vector task (gym, popgym) or a list of Atari games
(the Atari 100k games on a GPU host: `--agent der --env atari:Pong,Boxing,Freeway --steps 300000
--permute-every 100000`).
"""

import argparse
import dataclasses
import json
import os
from typing import Dict, List, Tuple

from repertory.benchmarks.base import Benchmark, Plan, Run
from repertory.errors import ConfigError

INTERVENTIONS = ("none", "injection", "layer_norm", "shrink_perturb", "redo")
DEFAULT_ENV = "gym:CartPole-v1"
QUICK_OVERRIDES: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "dqn": (("hidden_sizes", "32,32"), ("batch_size", "32"), ("min_replay_size", "200"), ("probe_steps", "4")),
    "der": (("hidden_size", "32"), ("batch_size", "8"), ("min_replay_size", "200"), ("probe_steps", "4")),
}
AGENTS = tuple(QUICK_OVERRIDES)
BINS = 40  # bins of actor steps for the return curves


@dataclasses.dataclass(frozen=True)
class PlasticitySettings:
  """What must match for two invocations to share an --out."""
  agent: str
  env: str
  steps: int
  permute_every: int
  injection_step: int
  reset_period: int
  redo_period: int
  diagnostics_period: int
  eval_every: int
  eval_episodes: int
  agent_overrides: Tuple[Tuple[str, str], ...] = ()

  def fingerprint(self) -> Dict[str, object]:
    record = dataclasses.asdict(self)
    record["agent_overrides"] = [list(p) for p in sorted(self.agent_overrides)]
    return record

  def intervention_overrides(self, intervention: str) -> Tuple[Tuple[str, str], ...]:
    return {"none": (), "injection": (("injection_step", str(self.injection_step)),),
            "layer_norm": (("layer_norm", "true"),),
            "shrink_perturb": (("shrink_perturb_period", str(self.reset_period)),),
            "redo": (("redo_period", str(self.redo_period)),)}[intervention]

  def experiment(self, intervention: str, seed: int, run_dir: str):
    from repertory.launch.experiment import ExperimentConfig
    overrides = (tuple(self.agent_overrides) + (("diagnostics_period", str(self.diagnostics_period)),)
                 + self.intervention_overrides(intervention))
    env = task_sequence(self.env, self.permute_every, seed)
    return ExperimentConfig(agent=self.agent, env=env, run_dir=run_dir, launcher="sync", seed=seed,
                            max_actor_steps=self.steps, eval_every=self.eval_every, eval_episodes=self.eval_episodes,
                            agent_overrides=overrides, progress=False)


def is_game_sequence(env: str) -> bool:
  from repertory.environments import parse_name
  return parse_name(env)[0] == "atari"


def task_sequence(env: str, every: int, seed: int) -> str:
  """`env` as a task sequence: Atari games switched every `every` steps, or a vector task permuted."""
  option = (f"switch_every={every}" if is_game_sequence(env)
            else f"permute_every={every}&permute_seed={seed}")
  return f"{env}{'&' if '?' in env else '?'}{option}"


def _check_env(env: str) -> None:
  if is_game_sequence(env) and "," not in env.split("?")[0]:
    raise ConfigError(f"--env {env} is one game, so the task never changes; give a sequence of games, "
                      "e.g. atari:Pong,Boxing,Freeway")


def _interventions(text: str) -> List[str]:
  names = [n.strip() for n in text.split(",") if n.strip()]
  unknown = [n for n in names if n not in INTERVENTIONS]
  if unknown or not names or len(set(names)) != len(names):
    raise ConfigError(f"--interventions '{text}' must name each of {', '.join(INTERVENTIONS)} at most once")
  return names


class PlasticityBenchmark(Benchmark):
  name = "plasticity"
  help = ("plasticity loss on a task sequence (permuted inputs or Atari games), with injection, layer norm, "
          "shrink-and-perturb and ReDo")
  description = __doc__
  resume_interrupted = True

  def add_arguments(self, p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", default="dqn",
                   help="agent on the shared SGD learner: dqn (vector tasks, Atari) or der (Atari)")
    p.add_argument("--env", default=DEFAULT_ENV, help="vector task whose observations get permuted, or a list of "
                   "Atari games played one after the other (atari:Pong,Boxing,Freeway)")
    p.add_argument("--interventions", default=",".join(INTERVENTIONS),
                   help=f"comma-separated, from {', '.join(INTERVENTIONS)}")
    p.add_argument("--seeds", type=int, default=3, help="seeds per intervention")
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed+1, ...")
    p.add_argument("--steps", type=int, default=60_000, help="actor steps per run")
    p.add_argument("--permute-every", type=int, default=15_000,
                   help="actor steps per task (a new permutation, or the next Atari game)")
    p.add_argument("--injection-step", type=int, default=None,
                   help="learner update of the injection (default: the first task change's)")
    p.add_argument("--reset-period", type=int, default=None,
                   help="learner updates between shrink-and-perturb resets (default: one per task)")
    p.add_argument("--redo-period", type=int, default=None,
                   help="learner updates between ReDo resets (default: four per task)")
    p.add_argument("--diagnostics-period", type=int, default=None, help="learner updates between diagnostics "
                   "(default: about 30 over the run)")
    p.add_argument("--eval-every", type=int, default=None, help="actor steps between evaluations (default: steps/10)")
    p.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="override an agent config field for every run (repeatable)")
    p.add_argument("--quick", action="store_true", help="reduced mode for CI: small networks and batches "
                   "(QUICK_OVERRIDES of the agent), at most 2 evaluation episodes")

  def settings(self, record):
    return record.get("configuration") or {}

  def plan(self, args: argparse.Namespace) -> Plan:
    from repertory import agents
    for flag in ("seeds", "steps", "permute_every", "eval_episodes"):
      if getattr(args, flag) < 1:
        raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.first_seed < 0:
      raise ConfigError(f"--first-seed must be >= 0, got {args.first_seed}")
    if args.permute_every >= args.steps:
      raise ConfigError(f"--permute-every {args.permute_every} >= --steps {args.steps}: the task never changes; "
                        "use more steps or shorter tasks")
    if args.agent not in AGENTS:
      raise ConfigError(f"--agent {args.agent}: the bench runs {' or '.join(AGENTS)} (replay learners with injection)")
    _check_env(args.env)
    interventions = _interventions(args.interventions)
    reserved = {k: f"set it with the benchmark's flags, not --config {k}=..." for k in
                ("injection_step", "layer_norm", "shrink_perturb_period", "redo_period", "diagnostics_period")}
    overrides = agents.parse_overrides(args.config, reserved)
    if args.quick:
      given = {k for k, _ in overrides}
      overrides = tuple(p for p in QUICK_OVERRIDES[args.agent] if p[0] not in given) + overrides
    config = agents.make_config(args.agent, dict(overrides))
    updates_per_task = max(1, int(args.permute_every * config.updates_per_actor_step))
    budget = int(max(0, args.steps - config.min_replay_size) * config.updates_per_actor_step)
    injection_step = args.injection_step or max(1, int((args.permute_every - config.min_replay_size)
                                                       * config.updates_per_actor_step))
    for flag, value in (("--injection-step", injection_step), ("--reset-period", args.reset_period),
                        ("--redo-period", args.redo_period), ("--diagnostics-period", args.diagnostics_period)):
      if value is not None and not 0 < value < max(budget, 2):
        raise ConfigError(f"{flag} {value} must be between 1 and this run's {budget} learner updates")
    settings = PlasticitySettings(
        agent=args.agent, env=args.env, steps=args.steps, permute_every=args.permute_every,
        injection_step=injection_step, reset_period=args.reset_period or updates_per_task,
        redo_period=args.redo_period or max(1, updates_per_task // 4),
        diagnostics_period=args.diagnostics_period or max(1, budget // 30),
        eval_every=args.eval_every or max(1, args.steps // 10),
        eval_episodes=min(args.eval_episodes, 2) if args.quick else args.eval_episodes, agent_overrides=overrides)
    runs = []
    for intervention in interventions:
      for seed in range(args.first_seed, args.first_seed + args.seeds):
        run_dir = os.path.join(args.out, "runs", intervention, f"seed_{seed}")
        experiment = settings.experiment(intervention, seed, run_dir)
        if seed == args.first_seed:
          experiment.validate().environment_spec()  # bad settings fail here, in one line, before any run
        runs.append(Run(f"{intervention} seed {seed}", run_dir, experiment, {"variant": intervention, "seed": seed},
                        title=f"{args.agent}, {intervention}, seed {seed}"))
    return Plan({"configuration": settings.fingerprint()}, tuple(runs))

  def report(self, args, plan: Plan, finished, missing, wall_clock_s: float) -> List[str]:
    from repertory.benchmarks.plasticity_report import write_reports
    settings = PlasticitySettings(**{**plan.record["configuration"], "agent_overrides": ()})
    written = write_reports(args.out, settings, finished)
    runs = {os.path.relpath(r.run_dir, args.out): "finished" for r in finished}
    runs.update({os.path.relpath(r.run_dir, args.out): "missing" for r in missing})
    from repertory.utils.provenance import provenance
    record = {**plan.record, "provenance": provenance(), "runs": runs, "wall_clock_s": round(wall_clock_s, 1)}
    written.append(os.path.join(args.out, "provenance.json"))
    with open(written[-1], "w") as f:
      json.dump(record, f, indent=2)
    return written


BENCHMARK = PlasticityBenchmark()


def task_changes(settings: PlasticitySettings) -> List[int]:
  return list(range(settings.permute_every, settings.steps, settings.permute_every))

