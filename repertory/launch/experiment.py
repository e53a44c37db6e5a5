"""What to run: agent, environment, budgets, where to write; shared by every launch type."""

import dataclasses
import json
import math
from typing import Any, List, Optional, Tuple

from repertory import agents, environments
from repertory.agents.data_parallel import check_setting
from repertory.environments.specs import EnvironmentSpec, make_environment_spec, spec_record
from repertory.errors import ConfigError
from repertory.replay.backends import resolve_backend

LAUNCHERS = ("sync", "thread", "ray")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  agent: str
  env: str
  run_dir: str
  launcher: str = "sync"
  seed: int = 0
  max_actor_steps: int = 50_000
  num_actors: int = 2
  envs_per_actor: int = 1  # > 1: each actor steps a vectorised environment with one policy call per step
  eval_every: int = 5_000  # actor steps between evaluations
  eval_episodes: int = 5
  eval_envs: int = 1  # > 1: evaluation episodes shared out over that many environments, one policy call per step
  agent_overrides: Tuple[Tuple[str, str], ...] = ()
  ray_address: Optional[str] = None
  max_restarts: int = 3  # thread/ray: restarts of each node before the run stops
  checkpoint_every: int = 5_000  # actor steps between checkpoints (besides every checkpoint_every_s)
  checkpoint_every_s: float = 120.0  # seconds between checkpoints (thread/ray: distributed.CheckpointRounds)
  checkpoint_replay: bool = False  # thread/ray: save the replay table periodically; restarts and --resume restore it
  replay: str = "auto"  # thread/ray replay backend: auto, native or reverb (a saved run records the one it used)
  node_timeout_s: float = 120.0  # longest any node may take to start or answer
  learner_devices: str = "auto"  # auto (all accelerators; 1 on CPU), all, or N: see agents.data_parallel
  learner_hosts: int = 1  # ray: learner processes, one per accelerator host, forming one JAX program
  progress: bool = True

  def validate(self) -> "ExperimentConfig":
    if self.launcher not in LAUNCHERS:
      raise ConfigError(f"unknown launcher '{self.launcher}'; choose one of {', '.join(LAUNCHERS)}")
    for name in ("max_actor_steps", "num_actors", "envs_per_actor", "eval_every", "eval_episodes", "eval_envs",
                 "checkpoint_every"):
      if getattr(self, name) < 1:
        raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
    if self.eval_envs > self.eval_episodes:
      raise ConfigError(f"--eval-envs {self.eval_envs} is more than the {self.eval_episodes} evaluation episode(s) to "
                        "share out; use at most --eval-episodes")
    if not math.isfinite(self.checkpoint_every_s) or self.checkpoint_every_s <= 0:
      raise ConfigError(f"--checkpoint-every-s must be a positive number of seconds, got {self.checkpoint_every_s}")
    if self.max_restarts < 0:
      raise ConfigError(f"--max-restarts must be >= 0, got {self.max_restarts}")
    if self.ray_address is not None and self.launcher != "ray":
      raise ConfigError("--ray-address needs --launcher ray")
    if self.learner_hosts < 1:
      raise ConfigError(f"--learner-hosts must be >= 1, got {self.learner_hosts}")
    if self.learner_hosts > 1 and self.ray_address is None:
      raise ConfigError(f"--learner-hosts {self.learner_hosts} needs a Ray cluster of that many hosts: pass --launcher "
                        "ray --ray-address <head>:6379 (docs/deploy.md); a local cluster is one host")
    resolve_backend(self.replay, self.launcher)
    environments.parse_name(self.env)  # unknown prefixes and malformed names fail here
    builder = self.make_builder()
    builder.table_config()  # unknown agents, config fields and replay settings fail here
    check_setting(str(self.learner_devices), builder.config.batch_size)
    if builder.config.batch_size % self.learner_hosts:
      raise ConfigError(f"--learner-hosts {self.learner_hosts} does not divide the batch size {builder.config.batch_size} "
                        "(each learner process takes an equal share); choose a divisor or set batch_size with --config")
    if getattr(builder.config, "injection_step", 0):
      from repertory.plasticity.config import check_injection_budget
      check_injection_budget(builder.config, self.learner_update_budget(builder.config))
    return self

  def learner_update_budget(self, config: Any) -> int:
    """About how many learner updates `max_actor_steps` buys: the replay ratio after the warm-up for the replay
    agents, one update per batch of unrolls for the on-policy ones."""
    if hasattr(config, "updates_per_actor_step"):
      warmup = getattr(config, "min_replay_size", 0)
      return int(max(0, self.max_actor_steps - warmup) * config.updates_per_actor_step)
    return self.max_actor_steps // max(1, config.batch_size * getattr(config, "unroll_length", 1))

  def data_parallel(self) -> Any:
    """The learner's devices (`--learner-devices`); one line when this host has fewer than asked."""
    from repertory.agents.data_parallel import DataParallel
    return DataParallel.create(str(self.learner_devices), self.make_builder().config.batch_size)

  def environment_spec(self) -> EnvironmentSpec:
    """Builds one environment to read its spec and checks that the agent can act in it.

    Called once per run (by the driver; `validate` builds nothing), and the spec is handed to every node.
    Unknown environment ids fail here with one line.
    """
    environment = self.make_environment(seed=self.seed)
    try:
      spec = make_environment_spec(environment)
    finally:
      environment.close()
    self.make_builder().check_environment(spec)
    return spec

  def with_resolved_replay(self) -> "ExperimentConfig":
    """This experiment with `replay` naming the backend it will use ("native" or "reverb"), not "auto"."""
    return dataclasses.replace(self, replay=resolve_backend(self.replay, self.launcher))

  def make_builder(self) -> Any:
    return agents.make_builder(self.agent, dict(self.agent_overrides))

  def make_environment(self, seed: int, evaluation: bool = False) -> Any:
    options = {"training": not evaluation} if self.env.startswith("atari:") else {}
    return environments.make(self.env, seed=seed, **options)

  def make_evaluation_environments(self) -> List[Any]:
    """The evaluator's `eval_envs` environments: the first seeded `seed + 10_000` (the one a single-environment
    evaluator has), environment i `seed + 10_000 + i * 1_000_000`, apart from other seeds' environments."""
    return [self.make_environment(seed=self.seed + 10_000 + i * 1_000_000, evaluation=True)
            for i in range(self.eval_envs)]

  def make_vector_environment(self, seed: int) -> Any:
    from repertory.environments.vector import make_vector
    options = {"training": True} if self.env.startswith("atari:") else {}
    return make_vector(self.env, self.envs_per_actor, seed=seed, **options)

  def save(self, path: str, spec: Optional[EnvironmentSpec] = None) -> None:
    """config.json: these fields, the agent's whole config and, given `spec`, the environment's shapes."""
    builder = self.make_builder()
    record = dataclasses.asdict(self)
    record["agent_config"] = dataclasses.asdict(builder.config)
    if spec is not None:
      record["environment_spec"] = spec_record(spec)
    with open(path, "w") as f:
      json.dump(record, f, indent=2, default=str)

  @classmethod
  def load(cls, path: str, trusted_env: Optional[str] = None) -> "ExperimentConfig":
    """The experiment a run's config.json records; one-line ConfigError when it is unreadable, or when its
    environment would import a module by name (`gym:<module>:<Id>`) and is not `trusted_env`, the one the
    user passed on the command line: a stored file never makes the process import code by itself."""
    experiment = cls._read(path)
    module = environments.module_to_import(experiment.env)
    if module is not None and experiment.env != trusted_env:
      raise ConfigError(f"'{path}' names environment '{experiment.env}', which imports module '{module}'; a stored run "
                        f"never imports modules by itself: pass --env {experiment.env} to resume it if you trust it")
    return experiment

  @classmethod
  def _read(cls, path: str) -> "ExperimentConfig":
    try:
      with open(path) as f:
        record = json.load(f)
      record.pop("agent_config", None)
      record["agent_overrides"] = tuple(tuple(p) for p in record.get("agent_overrides", ()))
      fields = {f.name for f in dataclasses.fields(cls)}
      return cls(**{k: v for k, v in record.items() if k in fields})
    except (OSError, ValueError, TypeError, AttributeError) as e:
      reason = str(e).splitlines()[0] if str(e) else type(e).__name__
      raise ConfigError(f"'{path}' is not a readable run config ({type(e).__name__}: {reason}); "
                        "restore it or start a new run with --overwrite") from None
