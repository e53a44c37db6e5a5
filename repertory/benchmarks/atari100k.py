"""`repertory bench atari100k`: the Atari 100k benchmark for DER with a chosen encoder.

Every (game, seed) is one `sync` run (deterministic on CPU for a seed) in its own run directory
`<out>/runs/<Game>_seed<k>/` (config.json, status.json, metrics.csv, learning_curve.png). Protocol
(Kaiser et al. 2019, arXiv 1903.00374; Dopamine DER.gin): 100k agent steps (400k frames), no sticky
actions, terminal on life loss in training only, episodes cut at 27k agent steps, evaluation at the end
with ε = 0.001 on a separate environment instance (`training=False`: an episode is a whole game, not a
life) over --eval-episodes games, true game scores. Reports in <out>:
  runs.csv (one row per run), per_game.csv, aggregate.csv (human-normalised mean / median / IQM with 95%
  stratified-bootstrap CIs, rliable), comparison.md (ours vs published DER, DrQ(ε), SPR, A-LIX),
  per_game_vs_published.png, aggregate_intervals.png, RESULTS.md (machine, commit, date, wall-clock
  and learner updates/s per run).
With --runs-per-process K, up to K runs of games with the same action set train in one process (one vmapped
learner update over their K parameter sets, one policy call for their K environments per step; each run keeps
its own replay, files and results, the same as when it runs alone: tests/launch/test_sync_group.py).
A finished run with the same configuration is skipped on a re-run and an unfinished one continues from its
last checkpoint, exactly as if it had not stopped (learner, replay, actors and environments: launch/sync_run.py;
one without that state starts again); an --out holding results of a different configuration is refused.
"""

import argparse
import dataclasses
import functools
from typing import Any, Dict, List, Sequence, Tuple

from repertory.benchmarks.base import Benchmark, Plan, Run
from repertory.errors import ConfigError

STEPS = 100_000  # agent steps per run (Atari 100k).
EVAL_EPISODES = 100  # Dopamine DER.gin MaxEpisodeEvalRunner.num_eval_episodes = 100.
EVAL_ENVS = 10  # environments the evaluation games are shared out over (10 games each), one policy call per step.
MAX_EPISODE_STEPS = 27_000  # Dopamine DER.gin Runner.max_steps_per_episode (108k frames).
# The default three-game subset; Freeway, not Breakout, whose evaluation games can run to the 27k-step cap.
DEFAULT_GAMES = ("Pong", "Boxing", "Freeway")
# --games names for the standard 26-game list (Kaiser et al. 2020, arXiv 1903.00374), in the reference table.
SUITE_NAMES = ("atari100k", "all")


def environment_name(game: str, max_episode_steps: int = MAX_EPISODE_STEPS) -> str:
  """`atari:<Game>`, with the episode cap as a query option when it differs from the protocol's."""
  return f"atari:{game}" if max_episode_steps == MAX_EPISODE_STEPS else f"atari:{game}?max_episode_steps={max_episode_steps}"


def experiment_config(agent: str, game: str, seed: int, run_dir: str, overrides: Dict[str, str],
                      steps: int = STEPS, eval_episodes: int = EVAL_EPISODES,
                      max_episode_steps: int = MAX_EPISODE_STEPS, eval_envs: int = 1):
  """One Atari 100k run as a `sync` ExperimentConfig; evaluation once, at the end of the budget, its games shared
  out over up to `eval_envs` environments."""
  from repertory.launch.experiment import ExperimentConfig
  return ExperimentConfig(
      agent=agent, env=environment_name(game, max_episode_steps), run_dir=run_dir, launcher="sync", seed=seed,
      max_actor_steps=steps, eval_every=steps, eval_episodes=eval_episodes, eval_envs=min(eval_envs, eval_episodes),
      agent_overrides=tuple(sorted((str(k), str(v)) for k, v in overrides.items())), progress=False)


def _games(text: str) -> List[str]:
  from repertory.environments.atari import rom_id
  from repertory.utils import scores
  whole_suite = text.strip().lower() in SUITE_NAMES
  names = scores.atari_games() if whole_suite else [g.strip() for g in text.split(",") if g.strip()]
  if not names:
    raise ConfigError("--games is empty; pass e.g. --games Pong,Boxing or --games atari100k (all 26)")
  games = []
  for name in names:
    game = scores.canonical_game(name)  # unknown to the Atari 100k reference table → ConfigError
    rom_id(game)
    if game not in games:
      games.append(game)
  return games


@functools.lru_cache(maxsize=None)
def _spec_key(env: str) -> Any:
  """What runs sharing a vmapped network must agree on: observation shape and number of actions."""
  from repertory import environments
  environment = environments.make(env, seed=0)
  try:
    return environment.observation_spec().shape, environment.action_spec().num_values
  finally:
    environment.close()


class Atari100k(Benchmark):
  name = "atari100k"
  help = "Atari 100k benchmark (DER with a chosen encoder)"
  description = __doc__
  record_file = "bench_config.json"
  default_workers = None
  resume_interrupted = True
  resume_exactly_only = True  # every published figure is that of an uninterrupted run

  def add_arguments(self, p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", default="der", help="agent name (der: data-efficient Rainbow, arXiv 1906.05243)")
    p.add_argument("--encoder", default=None,
                   help="DER encoder, any of repertory.networks.encoders: der (DER CNN, the default), alix (A-LIX, "
                        "arXiv 2207.00986), alix-atari (A-LIX as its paper ran Atari), hyperbolic (S-RYM, arXiv "
                        "2210.01542), drq, nature, impala-resnet")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="a published setting of the agent's config, under any --config: alix-paper = A-LIX's Atari "
                        "100k runs (arXiv 2207.00986 Table 7: alix-atari encoder, 3-step returns, 2 updates per step, "
                        "target every update, Adam eps 1.5e-5, 1600 random steps)")
    p.add_argument("--games", default=",".join(DEFAULT_GAMES),
                   help="comma-separated Atari 100k games (names of the reference table, e.g. MsPacman), or 'atari100k' "
                        "(also 'all') for the standard 26")
    p.add_argument("--seeds", type=int, default=3, help="seeds per game (seeds 0 .. N-1)")
    p.add_argument("--steps", type=int, default=STEPS, help="agent steps per run (Atari 100k: 100000 = 400k frames)")
    p.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES,
                   help="evaluation games per run at the end of training (ε = 0.001; protocol: 100)")
    p.add_argument("--eval-envs", type=int, default=EVAL_ENVS,
                   help="play the evaluation games on up to this many environments at once, each its equal share, "
                        "with one policy call per step (1: one game after the other)")
    p.add_argument("--max-episode-steps", type=int, default=MAX_EPISODE_STEPS,
                   help="agent steps after which an episode is cut (protocol: 27000 = 108k frames; lower only for smoke tests)")
    p.add_argument("--runs-per-process", type=int, default=1, metavar="K",
                   help="train up to K runs in one process with one vmapped learner update and one policy call per step "
                        "(runs of games with the same action set; each run's results as when it runs alone)")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="override a DER config field, e.g. --config n_step=20 (repeatable); "
                        "importance_sampling_anneal_steps defaults to (steps - min_replay_size) x updates per step. "
                        "A 100k run's replay holds up to ~0.7 GB: a frame per step, each distinct frame once")

  def plan(self, args: argparse.Namespace) -> Plan:
    import os
    from repertory import agents
    from repertory.networks.encoders import check_encoder
    for flag in ("seeds", "steps", "eval_episodes", "eval_envs", "max_episode_steps", "runs_per_process"):
      if getattr(args, flag) < 1:
        raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.agent not in agents.agent_names():
      raise ConfigError(f"unknown agent '{args.agent}'; choose one of {', '.join(agents.agent_names())}")
    default_config = agents.make_config(args.agent)
    fields = {f.name for f in dataclasses.fields(default_config)}
    if "encoder" not in fields:
      raise ConfigError(f"agent '{args.agent}' has no pluggable encoder; use --agent der")
    given = dict(agents.parse_overrides(args.config))
    if "encoder" in given:
      raise ConfigError("pass the encoder with --encoder, not --config encoder=...")
    preset = dict(agents.preset_overrides(args.agent, args.preset))
    if args.encoder is not None and preset.get("encoder", args.encoder) != args.encoder:
      raise ConfigError(f"--preset {args.preset} trains the {preset['encoder']} encoder; leave out --encoder "
                        f"{args.encoder}, or leave out --preset")
    overrides = {**preset, **given, "encoder": args.encoder or preset.get("encoder", "der")}
    check_encoder(overrides["encoder"])
    config = agents.make_config(args.agent, overrides)
    if "importance_sampling_anneal_steps" in fields and "importance_sampling_anneal_steps" not in overrides:
      updates = (args.steps - config.min_replay_size) * config.updates_per_actor_step
      overrides["importance_sampling_anneal_steps"] = str(max(1, int(updates)))
      config = agents.make_config(args.agent, overrides)  # β reaches 1 at the end of the run
    games = _games(args.games)
    if args.runs_per_process > len(games) * args.seeds:
      raise ConfigError(f"--runs-per-process {args.runs_per_process} is more than the {len(games) * args.seeds} run(s) "
                        f"asked for ({len(games)} game(s) x {args.seeds} seed(s)); use at most that")
    if args.runs_per_process > 1:
      from repertory.agents.stacked_learner import check_stackable
      check_stackable(config)
    record = {"benchmark": "atari100k", "agent": args.agent, "encoder": config.encoder, "steps": args.steps,
              "eval_episodes": args.eval_episodes, "eval_envs": min(args.eval_envs, args.eval_episodes),
              "max_episode_steps": args.max_episode_steps,
              "overrides": dict(sorted(overrides.items())), "agent_config": dataclasses.asdict(config)}
    runs = []
    for seed in range(args.seeds):  # seed-major: an interrupted benchmark has every game at the lower seeds
      for game in games:
        run_dir = os.path.join(args.out, "runs", f"{game}_seed{seed}")
        experiment = experiment_config(args.agent, game, seed, run_dir, overrides, steps=args.steps,
                                       eval_episodes=args.eval_episodes, max_episode_steps=args.max_episode_steps,
                                       eval_envs=args.eval_envs)
        runs.append(Run(f"{game} seed {seed}", run_dir, experiment, {"game": game, "seed": seed},
                        title=f"{args.agent} + {config.encoder} encoder on {game}, seed {seed}"))
    return Plan(record, tuple(runs))

  def groups(self, args, runs: Sequence[Run]) -> List[Tuple[Run, ...]]:
    """Up to --runs-per-process runs per process, each group of games with the same observation and action specs
    (one vmapped network), in the order planned."""
    by_spec: Dict[Any, List[Run]] = {}
    for run in runs:
      by_spec.setdefault(_spec_key(run.experiment.env), []).append(run)
    k = args.runs_per_process
    groups = [tuple(same[i:i + k]) for same in by_spec.values() for i in range(0, len(same), k)]
    return sorted(groups, key=lambda group: runs.index(group[0]))

  def report(self, args, plan: Plan, finished, missing, wall_clock_s: float) -> List[str]:
    import os
    from repertory.benchmarks import atari100k_report
    atari100k_report.write_reports(args.out, plan.record, finished, missing=tuple(missing))
    return [os.path.join(args.out, name) for name in atari100k_report.REPORT_FILES]


BENCHMARK = Atari100k()
