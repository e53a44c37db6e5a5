"""`repertory bench atari100k`: the Atari 100k benchmark for DER with a chosen encoder.

Every (game, seed) is one `sync` run (deterministic on CPU for a seed) in its own run directory
`<out>/runs/<Game>_seed<k>/` (config.json, status.json, metrics.csv, learning_curve.png), run in
parallel processes. Protocol (Atari 100k; Dopamine DER.gin): 100k agent steps, evaluation at the end
with ε = 0.001 on a separate environment instance (`training=False`: an episode is a whole game,
not a life) over --eval-episodes games, true game scores. Reports in <out>:
  runs.csv (one row per run), per_game.csv, aggregate.csv (human-normalised mean / median / IQM with 95%
  stratified-bootstrap CIs, rliable), comparison.md (ours vs published DER, DrQ(ε), SPR, A-LIX),
  per_game_vs_published.png, aggregate_intervals.png, RESULTS.md (machine, commit, date, wall-clock
  and learner updates/s per run).
A finished run with the same configuration is skipped on a re-run; an --out holding results of a
different configuration is refused.
"""

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from typing import Any, Dict, List, Tuple

from repertory.agents import parse_overrides
from repertory.errors import ConfigError
from repertory.launch import atari100k_report, run_pool

EXIT_RUN_FAILED = 1
BENCH_CONFIG = "bench_config.json"


def add_parser(subparsers) -> argparse.ArgumentParser:
  from repertory.experiments import atari100k
  p = subparsers.add_parser("atari100k", help="Atari 100k benchmark (DER with a chosen encoder)",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=__doc__)
  p.add_argument("--agent", default="der", help="agent name (der: data-efficient Rainbow, arXiv 1906.05243)")
  p.add_argument("--encoder", default="der",
                 help="DER encoder, any of repertory.networks.encoders: der (DER CNN), alix (A-LIX, arXiv 2207.00986), "
                      "hyperbolic (S-RYM, arXiv 2210.01542), drq, nature, impala-resnet")
  p.add_argument("--games", default=",".join(atari100k.DEFAULT_GAMES),
                 help="comma-separated Atari 100k games (names of the reference table, e.g. MsPacman), or 'all' for the 26")
  p.add_argument("--seeds", type=int, default=3, help="seeds per game (seeds 0 .. N-1)")
  p.add_argument("--out", required=True, help="output folder: runs/<Game>_seed<k>/ plus the CSV, Markdown and PNG reports")
  p.add_argument("--steps", type=int, default=atari100k.STEPS, help="agent steps per run (Atari 100k: 100000 = 400k frames)")
  p.add_argument("--eval-episodes", type=int, default=atari100k.EVAL_EPISODES,
                 help="evaluation games per run at the end of training (ε = 0.001; protocol: 100)")
  p.add_argument("--max-episode-steps", type=int, default=atari100k.MAX_EPISODE_STEPS,
                 help="agent steps after which an episode is cut (protocol: 27000 = 108k frames; lower only for smoke tests)")
  p.add_argument("--workers", type=int, default=None,
                 help="runs in parallel, one process each (default: min(CPU cores, runs)); each 100k run's replay "
                      "needs up to ~6 GB of memory")
  p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                 help="override a DER config field, e.g. --config n_step=20 (repeatable); importance_sampling_anneal_steps "
                      "defaults to steps - min_replay_size")
  p.add_argument("--report-only", action="store_true",
                 help="run nothing: write the reports over the runs of this configuration that already finished "
                      "(marked partial when some are missing)")
  p.add_argument("--no-progress", action="store_true", help="no progress bars")
  return p


# ------------------------------------------------------------------------------------------------
# Configuration.


@dataclasses.dataclass(frozen=True)
class RunSpec:
  game: str
  seed: int
  run_dir: str
  experiment: Dict[str, Any]  # ExperimentConfig fields


def _games(text: str) -> List[str]:
  from repertory.environments.atari import rom_id
  from repertory.utils import scores
  names = scores.atari_games() if text.strip().lower() == "all" else [g.strip() for g in text.split(",") if g.strip()]
  if not names:
    raise ConfigError("--games is empty; pass e.g. --games Pong,Boxing or --games all")
  games = []
  for name in names:
    game = scores.canonical_game(name)  # unknown to the Atari 100k reference table → ConfigError
    rom_id(game)
    if game not in games:
      games.append(game)
  return games


def resolve(args: argparse.Namespace) -> Tuple[Dict[str, Any], List[RunSpec]]:
  """Validates the arguments; returns the benchmark's configuration record and its runs."""
  from repertory import agents
  from repertory.experiments import atari100k
  for flag in ("seeds", "steps", "eval_episodes", "max_episode_steps"):
    if getattr(args, flag) < 1:
      raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
  if args.workers is not None and args.workers < 1:
    raise ConfigError(f"--workers must be >= 1, got {args.workers}")
  if args.agent not in agents.agent_names():
    raise ConfigError(f"unknown agent '{args.agent}'; choose one of {', '.join(agents.agent_names())}")
  overrides = dict(parse_overrides(args.config))
  fields = {f.name for f in dataclasses.fields(agents.make_config(args.agent))}
  if "encoder" not in fields:
    raise ConfigError(f"agent '{args.agent}' has no pluggable encoder; use --agent der")
  if "encoder" in overrides and overrides["encoder"] != args.encoder:
    raise ConfigError("pass the encoder with --encoder, not --config encoder=...")
  overrides["encoder"] = args.encoder
  from repertory.networks.encoders import check_encoder
  check_encoder(args.encoder)
  config = agents.make_config(args.agent, overrides)
  if "importance_sampling_anneal_steps" in fields and "importance_sampling_anneal_steps" not in overrides:
    overrides["importance_sampling_anneal_steps"] = str(max(1, args.steps - config.min_replay_size))
    config = agents.make_config(args.agent, overrides)  # β reaches 1 at the end of the run
  games = _games(args.games)
  record = {"benchmark": "atari100k", "agent": args.agent, "encoder": args.encoder, "steps": args.steps,
            "eval_episodes": args.eval_episodes, "max_episode_steps": args.max_episode_steps,
            "overrides": dict(sorted(overrides.items())), "agent_config": dataclasses.asdict(config)}
  runs = []
  for seed in range(args.seeds):  # seed-major: an interrupted benchmark has every game at the lower seeds
    for game in games:
      run_dir = os.path.join(args.out, "runs", f"{game}_seed{seed}")
      experiment = atari100k.experiment_config(args.agent, game, seed, run_dir, overrides, steps=args.steps,
                                               eval_episodes=args.eval_episodes,
                                               max_episode_steps=args.max_episode_steps)
      runs.append(RunSpec(game, seed, run_dir, dataclasses.asdict(experiment)))
  return record, runs


def _normalised(value: Any) -> Any:
  return json.loads(json.dumps(value, default=str, sort_keys=True))


def check_out_dir(out: str, record: Dict[str, Any]) -> None:
  """Refuses an --out that holds another configuration's results; records this one otherwise."""
  path = os.path.join(out, BENCH_CONFIG)
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if _normalised(saved) != _normalised(record):
      differ = sorted({k for k in set(saved) | set(record) if _normalised(saved.get(k)) != _normalised(record.get(k))})
      detail = []
      for key in differ:
        if isinstance(record.get(key), dict) and isinstance(saved.get(key), dict):
          detail += [f"{key}.{k}" for k in sorted(set(saved[key]) | set(record[key]))
                     if _normalised(saved[key].get(k)) != _normalised(record[key].get(k))]
        else:
          detail.append(key)
      raise ConfigError(f"--out '{out}' holds results of a different configuration (differs in {', '.join(detail)}); "
                        "choose another --out or rerun with the same settings")
    return
  if os.path.isdir(out) and os.listdir(out):
    raise ConfigError(f"--out '{out}' is not empty and holds no {BENCH_CONFIG}; choose an empty or new folder")
  os.makedirs(out, exist_ok=True)
  with open(path, "w") as f:
    json.dump(record, f, indent=2, default=str)


def _expected_run_config(spec: RunSpec) -> Dict[str, Any]:
  from repertory import agents
  record = dict(spec.experiment)
  record["agent_config"] = dataclasses.asdict(agents.make_config(record["agent"], dict(record["agent_overrides"])))
  return _normalised(record)


def is_finished(spec: RunSpec) -> bool:
  """status.json says finished and config.json equals this run's configuration."""
  try:
    with open(os.path.join(spec.run_dir, "status.json")) as f:
      status = json.load(f)
    with open(os.path.join(spec.run_dir, "config.json")) as f:
      saved = json.load(f)
  except (OSError, ValueError):
    return False
  saved.pop("progress", None)
  expected = _expected_run_config(spec)
  expected.pop("progress", None)
  return status.get("status") == "finished" and _normalised(saved) == expected


# ------------------------------------------------------------------------------------------------
# One run (in its own process).


def _write_status(run_dir: str, status: str, **extra) -> None:
  tmp = os.path.join(run_dir, "status.json.tmp")
  with open(tmp, "w") as f:
    json.dump({"status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}, f, indent=2, default=str)
  os.replace(tmp, os.path.join(run_dir, "status.json"))


def _training_rate(metrics_csv: str) -> Tuple[float, float]:
  """(learner updates/s, actor steps/s) between the first and last learner log rows."""
  from repertory.utils.loggers import read_metrics
  rows = read_metrics(metrics_csv, "learner")
  if len(rows) < 2:
    return float("nan"), float("nan")
  first, last = rows[0], rows[-1]
  dt = float(last["time"]) - float(first["time"])
  if dt <= 0:
    return float("nan"), float("nan")
  return ((float(last["learner_steps"]) - float(first["learner_steps"])) / dt,
          (float(last["actor_steps"]) - float(first["actor_steps"])) / dt)


def run_one(spec: RunSpec) -> Dict[str, Any]:
  """Runs one (game, seed) from scratch with the sync launcher; writes status.json; returns its summary."""
  from repertory.launch.experiment import ExperimentConfig
  from repertory.launch.sync import run_sync
  from repertory.utils.loggers import read_metrics
  if os.path.exists(spec.run_dir):
    shutil.rmtree(spec.run_dir)
  os.makedirs(spec.run_dir)
  experiment = ExperimentConfig(**{**spec.experiment, "agent_overrides": tuple(tuple(p) for p in spec.experiment["agent_overrides"])})
  experiment.save(os.path.join(spec.run_dir, "config.json"))
  from repertory.utils.provenance import commit
  started = {"commit": commit(), "pid": os.getpid(), "cpus": sorted(os.sched_getaffinity(0)), "xla_flags": os.environ.get("XLA_FLAGS", "")}
  _write_status(spec.run_dir, "running", **started)
  start = time.time()
  try:
    summary = run_sync(experiment.validate(), log_every=max(1, min(1_000, experiment.max_actor_steps // 20)))
  except BaseException as e:  # noqa: BLE001 — recorded, then reported by the parent
    _write_status(spec.run_dir, "failed", error=f"{type(e).__name__}: {e}")
    return {"game": spec.game, "seed": spec.seed, "status": "failed", "error": f"{type(e).__name__}: {e}"}
  wall = time.time() - start
  metrics_csv = os.path.join(spec.run_dir, "metrics.csv")
  evaluations = read_metrics(metrics_csv, "evaluator")
  updates_per_s, steps_per_s = _training_rate(metrics_csv)
  summary.update(started, game=spec.game, seed=spec.seed, wall_clock_s=round(wall, 1),
                 score=float(summary["final_evaluation_return"]),
                 eval_episodes=int(float(evaluations[-1]["episodes_evaluated"])) if evaluations else 0,
                 eval_return_std=float(evaluations[-1]["return_std"]) if evaluations else float("nan"),
                 learner_updates_per_s=round(updates_per_s, 2), training_steps_per_s=round(steps_per_s, 2))
  try:
    from repertory.utils.plotting import plot_learning_curve
    plot_learning_curve(metrics_csv, os.path.join(spec.run_dir, "learning_curve.png"), title=_plot_title(spec))
  except Exception as e:  # noqa: BLE001 — a plot must not lose a finished run
    summary["plot_error"] = f"{type(e).__name__}: {e}"
  _write_status(spec.run_dir, "finished", **summary)
  return {**summary, "status": "finished"}


def _plot_title(spec: RunSpec) -> str:
  encoder = dict(spec.experiment["agent_overrides"]).get("encoder", "der")
  return f"{spec.experiment['agent']} + {encoder} encoder on {spec.game}, seed {spec.seed}"


# ------------------------------------------------------------------------------------------------
# Entry points.


def run(args: argparse.Namespace) -> int:
  record, specs = resolve(args)
  if args.report_only and not os.path.exists(os.path.join(args.out, BENCH_CONFIG)):
    raise ConfigError(f"--report-only: '{args.out}' holds no {BENCH_CONFIG}; run the benchmark there first")
  check_out_dir(args.out, record)
  todo = [s for s in specs if not is_finished(s)]
  skipped = len(specs) - len(todo)
  if args.report_only:
    finished = [s for s in specs if s not in todo]
    if not finished:
      raise ConfigError(f"--report-only: no run of this configuration has finished in '{args.out}'; run the benchmark first")
    atari100k_report.write_reports(args.out, record, finished, skipped, missing=tuple(todo))
    print(f"atari100k: wrote reports over {len(finished)} finished run(s) of {len(specs)} to {args.out}")
    return 0
  workers = args.workers or max(1, min(len(os.sched_getaffinity(0)), len(todo)))
  print(f"atari100k: {record['agent']} + {record['encoder']}, {len(specs)} run(s) "
        f"({skipped} already finished, skipped), {workers} worker(s), out {args.out}", flush=True)
  results = run_pool.execute(todo, run_one, workers, args.steps, progress=not args.no_progress,
                             describe=lambda spec: f"{spec.game} seed {spec.seed}",
                             failure=lambda spec, error: {"game": spec.game, "seed": spec.seed, "status": "failed", "error": error})
  failed = [r for r in results if r["status"] != "finished"]
  for r in failed:
    print(f"atari100k: run {r['game']} seed {r['seed']} failed: {r.get('error')}", file=sys.stderr)
  finished = [s for s in specs if is_finished(s)]
  if failed or len(finished) != len(specs):
    print(f"atari100k: {len(specs) - len(finished)} run(s) did not finish; reports not written "
          "(rerun the same command to retry them)", file=sys.stderr)
    return EXIT_RUN_FAILED
  atari100k_report.write_reports(args.out, record, specs, skipped)
  print(f"atari100k: wrote {os.path.join(args.out, 'RESULTS.md')}, per_game.csv, aggregate.csv, comparison.md and plots")
  return 0
