"""`repertory train`: its flags, the checks of a run dir and of --resume, then one run (`training.train_run`)."""

import argparse
import os
import shutil
import sys
from typing import Tuple

from repertory.agents import parse_overrides, preset_overrides
from repertory.errors import ConfigError

REVERB_EXPOSED = ("repertory: note: with --replay reverb the replay's port is open on every network interface, without "
                  "authentication (docs/deploy.md); --replay native, the default, keeps the replay inside Ray")


class _Default(str):
  """A flag's default that remembers it was not given, so that --resume can tell it from a given value."""


def add_parser(subparsers) -> argparse.ArgumentParser:
  p = subparsers.add_parser(
      "train", help="train an agent", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
      description="Train an agent on an environment with one of the launch types (sync, thread, ray).")
  p.add_argument("--agent", default=_Default("dqn"), help="agent name (dqn)")
  p.add_argument("--env", default=_Default("gym:CartPole-v1"),
                 help="environment: gym:<id>, atari:<Game>, minigrid:<id>, popgym:<Name>, dmc:<domain>-<task>, memory_maze:<size>")
  p.add_argument("--launcher", default=_Default("sync"), help="launch type: sync (one process, deterministic), "
                 "thread (one process, a thread per node), ray (a process per node)")
  p.add_argument("--num-actors", type=int, default=2, help="actor nodes (thread and ray launch types)")
  p.add_argument("--envs-per-actor", type=int, default=1,
                 help="environments each actor (sync: the one actor) steps together with one policy call per step "
                      "(ale-py's C++ AtariVectorEnv for atari:)")
  p.add_argument("--max-actor-steps", type=int, default=50_000, help="environment steps over all actors; the run stops there")
  p.add_argument("--seed", type=int, default=0, help="random seed")
  p.add_argument("--run-dir", required=True, help="where config.json, metrics.csv, TensorBoard files, plots and checkpoints go")
  p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
  p.add_argument("--overwrite", action="store_true", help="delete the run in --run-dir and start afresh")
  p.add_argument("--ray-address", default=None, help="attach to an existing Ray cluster (host:port or 'auto') "
                 "instead of starting a local one")
  p.add_argument("--eval-every", type=int, default=5_000, help="actor steps between evaluations")
  p.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation")
  p.add_argument("--eval-envs", type=int, default=1,
                 help="environments the evaluation episodes are shared out over, stepped together with one policy call "
                      "per step (1: one episode after the other)")
  p.add_argument("--checkpoint-every", type=int, default=5_000,
                 help="actor steps between checkpoints (besides every --checkpoint-every-s); sync: of the whole run "
                      "(learner, replay, actors, environments), from which --resume continues exactly; thread/ray: of "
                      "the learner, the counter and, with --checkpoint-replay, the replay table, of one instant (actors and "
                      "learner held meanwhile)")
  p.add_argument("--checkpoint-every-s", type=float, default=120.0,
                 help="seconds between checkpoints (besides every --checkpoint-every actor steps)")
  p.add_argument("--checkpoint-replay", action="store_true",
                 help="thread/ray: checkpoint the replay table with each checkpoint and at the end, so that a "
                      "restarted replay node and --resume restore it (Atari tables take gigabytes)")
  p.add_argument("--replay", default="auto", choices=("auto", "native", "reverb"),
                 help="thread/ray replay service: native (the project's tables, any Python) or reverb (dm-reverb, "
                      "Python 3.11 only; its server listens on every interface, without authentication); auto: "
                      "native. sync always keeps its table in process")
  p.add_argument("--max-restarts", "--max-actor-restarts", dest="max_restarts", type=int, default=3,
                 help="thread/ray: restarts of each node (actors, replay, learner, counter, evaluator) before the run "
                      "stops; --max-actor-restarts is its old name")
  p.add_argument("--learner-devices", default="auto", metavar="auto|all|N",
                 help="devices the learner splits each batch over: auto (all accelerators, 1 on CPU), all (every local "
                      "device), or N (the first N); N must divide the batch size")
  p.add_argument("--learner-hosts", type=int, default=1, metavar="N",
                 help="ray: N learner processes, one per accelerator host of the cluster (--ray-address), forming one "
                      "JAX program; each samples 1/N of every batch. N must divide the batch size (docs/deploy.md)")
  p.add_argument("--node-timeout", type=float, default=120.0, help="seconds a node may take to start or answer")
  p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                 help="override an agent config field, e.g. --config learning_rate=3e-4 (repeatable)")
  p.add_argument("--preset", default=None, metavar="NAME",
                 help="a published setting of the agent's config, under any --config (der: alix-paper, A-LIX's Atari "
                      "100k runs, arXiv 2207.00986 Table 7)")
  p.add_argument("--no-progress", action="store_true", help="no live progress line")
  return p


def prepare_run_dir(run_dir: str, resume: bool, overwrite: bool) -> None:
  if resume and overwrite:
    raise ConfigError("--resume and --overwrite contradict each other; pass one")
  exists = os.path.isdir(run_dir) and bool(os.listdir(run_dir))
  if resume:
    if not os.path.exists(os.path.join(run_dir, "config.json")):
      raise ConfigError(f"nothing to resume in '{run_dir}' (no config.json); drop --resume to start a new run")
    return
  if exists and not overwrite:
    raise ConfigError(f"run dir '{run_dir}' already exists; pass --resume to continue it or --overwrite to replace it")
  if exists:
    if not os.path.exists(os.path.join(run_dir, "config.json")):
      raise ConfigError(f"'{run_dir}' holds files that are not a repertory run; choose another --run-dir")
    shutil.rmtree(run_dir)
  try:
    os.makedirs(run_dir, exist_ok=True)
  except OSError as e:
    raise ConfigError(f"cannot create --run-dir '{run_dir}' ({e.strerror}); choose another --run-dir") from None


def check_run_dir_path(run_dir: str) -> None:
  """One line for a --run-dir that can never hold a run: empty, a file, or under a folder nobody may write."""
  if not run_dir.strip():
    raise ConfigError("--run-dir is empty; give a folder for the run, e.g. --run-dir runs/cartpole")
  if os.path.exists(run_dir) and not os.path.isdir(run_dir):
    raise ConfigError(f"--run-dir '{run_dir}' is a file, not a folder; choose another --run-dir")
  parent = os.path.dirname(os.path.abspath(run_dir))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
    raise ConfigError(f"cannot create --run-dir '{run_dir}': '{parent}' is not a writable folder; choose another --run-dir")


def requested_overrides(agent: str, args: argparse.Namespace) -> Tuple[Tuple[str, str], ...]:
  """The agent config overrides of --preset, then --config (a key in both takes --config's value)."""
  merged = dict(preset_overrides(agent, args.preset))
  merged.update(parse_overrides(args.config))
  return tuple(merged.items())


def check_resume_flags(saved, args: argparse.Namespace) -> None:
  """--agent, --env, --launcher, --config and --preset given on --resume must be the stored run's; one line
  otherwise."""
  for flag, field in (("--agent", "agent"), ("--env", "env"), ("--launcher", "launcher")):
    value = getattr(args, field)
    if not isinstance(value, _Default) and value != getattr(saved, field):
      raise ConfigError(f"{flag} {value} contradicts the run in '{args.run_dir}' ({field} {getattr(saved, field)}); "
                        f"drop {flag} to resume it, or start a new run with --overwrite")
  requested = requested_overrides(saved.agent, args)
  if requested and requested != tuple(saved.agent_overrides):
    stored = " ".join(f"--config {k}={v}" for k, v in saved.agent_overrides) or "no --config"
    given = " ".join([f"--preset {args.preset}"] * bool(args.preset) + [f"--config {c}" for c in args.config])
    raise ConfigError(f"{given} contradicts the run in '{args.run_dir}' ({stored}); drop --config and --preset to "
                      "resume it, or start a new run with --overwrite")


def check_resumed_replay(saved, requested: str) -> None:
  """A run resumes on the replay backend it recorded; `--replay` naming another one is refused with one line."""
  from repertory.replay.backends import resolve_backend
  if saved.replay == "auto" or requested == "auto":  # "auto" in a run dir from before backends were recorded
    return
  if resolve_backend(requested, saved.launcher) != saved.replay:
    raise ConfigError(f"run dir '{saved.run_dir}' was trained with --replay {saved.replay}; resume it with "
                      f"--replay {saved.replay} (or leave --replay out)")


def train(args: argparse.Namespace) -> int:
  from repertory.launch.experiment import ExperimentConfig
  from repertory.launch.training import check_not_running
  check_run_dir_path(args.run_dir)
  check_not_running(args.run_dir)
  experiment = ExperimentConfig(
      agent=args.agent, env=args.env, run_dir=args.run_dir, launcher=args.launcher, seed=args.seed,
      max_actor_steps=args.max_actor_steps, num_actors=args.num_actors, envs_per_actor=args.envs_per_actor, eval_every=args.eval_every,
      eval_episodes=args.eval_episodes, eval_envs=args.eval_envs,
      agent_overrides=requested_overrides(args.agent, args),
      ray_address=args.ray_address, max_restarts=args.max_restarts,
      node_timeout_s=args.node_timeout, progress=not args.no_progress, checkpoint_replay=args.checkpoint_replay,
      checkpoint_every=args.checkpoint_every, checkpoint_every_s=args.checkpoint_every_s,
      replay=args.replay, learner_devices=args.learner_devices, learner_hosts=args.learner_hosts)
  if args.resume:
    prepare_run_dir(args.run_dir, resume=True, overwrite=args.overwrite)
    saved = ExperimentConfig.load(os.path.join(args.run_dir, "config.json"),
                                  trusted_env=None if isinstance(args.env, _Default) else args.env)
    check_resume_flags(saved, args)
    from repertory.launch.training import check_resumable
    check_resumable(args.run_dir)
    experiment = saved.__class__(**{**saved.__dict__, "run_dir": args.run_dir, "max_actor_steps": args.max_actor_steps,
                                    "progress": not args.no_progress, "ray_address": args.ray_address,
                                    "learner_devices": args.learner_devices, "learner_hosts": args.learner_hosts,
                                    "checkpoint_every": args.checkpoint_every,
                                    "checkpoint_every_s": args.checkpoint_every_s})
    check_resumed_replay(saved, args.replay)
  experiment = experiment.validate().with_resolved_replay()
  spec = experiment.environment_spec()
  if experiment.ray_address is None:  # the learner runs on this host (in this process, or a local Ray cluster)
    experiment.data_parallel()
  if experiment.ray_address is not None:  # attached before the run dir is touched, so a refusal leaves none
    from repertory.launch.distributed import cpus_needed
    from repertory.launch.ray_cluster import attach_ray, check_cluster_cpus, check_learner_hosts
    attach_ray(experiment.ray_address)
    check_learner_hosts(experiment.learner_hosts)
    check_cluster_cpus(cpus_needed(experiment))
  if experiment.replay == "reverb":
    print(REVERB_EXPOSED, file=sys.stderr, flush=True)
  if not args.resume:
    prepare_run_dir(args.run_dir, resume=False, overwrite=args.overwrite)
  from repertory.launch.training import train_run
  summary = train_run(experiment, spec, resume=args.resume)
  print(f"finished: {int(summary['actor_steps']):,} actor steps, {int(summary['learner_steps']):,} learner steps, "
        f"final evaluation return {summary['final_evaluation_return']:.1f}, {summary['wall_clock_s']:.0f} s")
  print(f"learning curve: {summary.get('learning_curve', summary.get('plot_error'))}")
  if "diagnostics_plot" in summary:
    print(f"plasticity diagnostics: {summary['diagnostics_plot']}")
  print(f"metrics: {os.path.join(args.run_dir, 'metrics.csv')}  (TensorBoard: {os.path.join(args.run_dir, 'tensorboard')})")
  return 0
