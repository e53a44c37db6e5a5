"""Memory benchmark: IMPALA with each recurrent core (and the feed-forward `none` baseline) on tasks that
need memory (MiniGrid MemoryS7, POPGym, Memory Maze).

One trial = one (core, seed). The default "vector" runner is one process, deterministic for a seed on
CPU: `num_envs` environments stepped together with one batched policy call per step
(`VectorEnvironmentLoop`), sequences into an in-process FIFO queue, and one learner update each time
the queue holds a batch (every sequence is used exactly once, as IMPALA's learner consumes its actors'
unrolls). The evaluator runs `eval_episodes` episodes with the current parameters every `eval_every`
environment steps. A trial writes a normal run dir (config.json with `agent_config`, metrics.csv,
checkpoints/, status.json), so it can be resumed from, plotted, or used as a distillation teacher.
"""

import dataclasses
import json
import math
import os
import time
from typing import Any, Dict, Sequence, Tuple

import numpy as np

from repertory import agents, environments
from repertory.networks.cores import CORE_NAMES as CORES

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


@dataclasses.dataclass(frozen=True)
class TrialConfig:
  env: str
  core: str
  seed: int
  steps: int
  run_dir: str
  agent_overrides: Tuple[Tuple[str, str], ...] = BENCH_AGENT_DEFAULTS
  num_envs: int = 16
  eval_every: int = 20_000
  eval_episodes: int = 10


def agent_overrides(core: str, extra: Sequence[Tuple[str, str]] = ()) -> Dict[str, str]:
  overrides = dict(BENCH_AGENT_DEFAULTS)
  overrides.update(dict(extra))
  overrides["core"] = core
  return overrides


def _evaluate(builder, policy, learner, env, seed: int, episodes: int) -> Tuple[float, float]:
  from repertory.agents.environment_loop import EnvironmentLoop
  actor = builder.make_actor(policy, learner, seed, adder=None, evaluation=True)
  loop = EnvironmentLoop(env, actor, update_actor=False)
  actor.update()
  returns = [e.episode_return for e in loop.run_episodes(episodes)]
  return float(np.mean(returns)), float(np.std(returns))


def run_trial(trial: TrialConfig, progress: bool = False) -> Dict[str, Any]:
  """Trains IMPALA with `trial.core` for `trial.steps` environment steps; returns a summary."""
  from repertory.agents.environment_loop import VectorEnvironmentLoop
  from repertory.environments.vector import make_vector
  from repertory.replay.table import Table
  from repertory.utils.checkpointing import Checkpointer
  from repertory.utils.loggers import MetricsWriter

  os.makedirs(trial.run_dir, exist_ok=True)
  overrides = agent_overrides(trial.core, trial.agent_overrides)
  builder = agents.make_builder("impala", overrides)
  environment = environments.make(trial.env, seed=trial.seed)
  spec = environments.make_environment_spec(environment)
  environment.close()
  builder.check_environment(spec)
  record = {"agent": "impala", "env": trial.env, "run_dir": trial.run_dir, "launcher": "vector", "seed": trial.seed,
            "max_actor_steps": trial.steps, "num_actors": 1, "envs_per_actor": trial.num_envs,
            "eval_every": trial.eval_every, "eval_episodes": trial.eval_episodes,
            "agent_overrides": sorted(overrides.items()), "agent_config": dataclasses.asdict(builder.config)}
  with open(os.path.join(trial.run_dir, "config.json"), "w") as f:
    json.dump(record, f, indent=2, default=str)
  _status(trial.run_dir, "running")

  networks = builder.make_networks(spec)
  replay = Table(builder.table_config(), seed=trial.seed, rate_limited=False)
  batch_size = builder.config.batch_size
  learner = builder.make_learner(networks, spec, replay.as_iterator(batch_size), None, trial.seed)
  policy = builder.make_policy(networks)
  adders = [builder.make_adder(replay) for _ in range(trial.num_envs)]
  actor = builder.make_actor(policy, learner, trial.seed * 1000 + 1, adder=adders)
  loop = VectorEnvironmentLoop(make_vector(trial.env, trial.num_envs, seed=trial.seed * 1000 + 1), actor)
  eval_env = environments.make(trial.env, seed=trial.seed + 10_000)
  writer = MetricsWriter(trial.run_dir, tensorboard=False)
  start = time.monotonic()
  steps = episodes = 0
  recent: list = []
  next_eval = 0
  final = math.nan
  try:
    while True:
      if steps >= next_eval or steps >= trial.steps:
        final, spread = _evaluate(builder, policy, learner, eval_env, trial.seed + 10_000, trial.eval_episodes)
        writer.write("evaluator", {"actor_steps": steps, "learner_steps": learner.steps, "episodes": episodes,
                                   "episode_return": final, "return_std": spread,
                                   "episodes_evaluated": trial.eval_episodes,
                                   "elapsed_s": round(time.monotonic() - start, 1)})
        if progress:
          print(f"  [{trial.core} seed {trial.seed}] {steps:,} steps: evaluation return {final:.3f}", flush=True)
        next_eval += trial.eval_every
        if steps >= trial.steps:
          break
      # A few batched steps at a time, so the learner consumes the queue as it fills (each sequence once).
      chunk = min(5, max(1, (next_eval - steps) // trial.num_envs), max(1, (trial.steps - steps) // trial.num_envs))
      finished = loop.run_steps(chunk)
      steps += chunk * trial.num_envs
      episodes += len(finished)
      recent += [e.episode_return for e in finished]
      metrics = None
      while replay.can_sample(batch_size):
        metrics = learner.step()
      if recent:
        row = {"actor_steps": steps, "learner_steps": learner.steps, "episodes": episodes,
               "episode_return": float(np.mean(recent))}
        if metrics is not None:
          row["loss"] = float(metrics["loss"])
        writer.write("actor", row)
        recent = []
    checkpointer = Checkpointer(os.path.join(trial.run_dir, "checkpoints"))
    checkpointer.save(learner.steps, learner.state())
    checkpointer.close()
  except BaseException as e:
    _status(trial.run_dir, "failed", error=f"{type(e).__name__}: {e}")
    raise
  finally:
    writer.close()
    eval_env.close()
  summary = {"actor_steps": steps, "learner_steps": learner.steps, "episodes": episodes,
             "final_evaluation_return": final, "wall_clock_s": round(time.monotonic() - start, 1)}
  _status(trial.run_dir, "finished", **summary)
  return summary


def _status(run_dir: str, status: str, **extra) -> None:
  with open(os.path.join(run_dir, "status.json"), "w") as f:
    json.dump({"status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}, f, indent=2, default=str)


def finished(run_dir: str) -> bool:
  path = os.path.join(run_dir, "status.json")
  if not os.path.exists(path):
    return False
  with open(path) as f:
    return json.load(f).get("status") == "finished"


def evaluation_curve(run_dir: str):
  """The evaluator rows of a run as a DataFrame with columns step, return."""
  import pandas as pd
  df = pd.read_csv(os.path.join(run_dir, "metrics.csv"))
  df = df[df["source"] == "evaluator"]
  return pd.DataFrame({"step": pd.to_numeric(df["actor_steps"]), "return": pd.to_numeric(df["episode_return"])})


__all__ = ["CORES", "MEMORY_TASKS", "BENCH_AGENT_DEFAULTS", "TrialConfig", "run_trial", "finished", "evaluation_curve",
           "agent_overrides"]
