"""Named Atari 100k experiments: DER with each encoder, under the Atari 100k protocol.

Protocol (Kaiser et al. 2019, arXiv 1903.00374; Dopamine DER.gin): 100k agent steps (400k frames)
per run, no sticky actions, terminal on life loss in training only, episodes capped at 27k agent steps,
evaluation with ε = 0.001 over 100 episodes on a separate environment (`training=False`, game scores).
"""

from typing import Mapping, Tuple

STEPS = 100_000  # agent steps per run (Atari 100k).
EVAL_EPISODES = 100  # Dopamine DER.gin MaxEpisodeEvalRunner.num_eval_episodes = 100.
MAX_EPISODE_STEPS = 27_000  # Dopamine DER.gin Runner.max_steps_per_episode (108k frames).
# The default three-game subset; Freeway, not Breakout, whose evaluation games can run to the 27k-step cap.
DEFAULT_GAMES = ("Pong", "Boxing", "Freeway")

# name → (agent, agent config overrides).
NAMED_CONFIGS: Mapping[str, Tuple[str, Mapping[str, str]]] = {
    "der": ("der", {"encoder": "der"}),  # van Hasselt et al. 2019, arXiv 1906.05243.
    "der_alix": ("der", {"encoder": "alix"}),  # A-LIX encoder, Cetin et al. 2022, arXiv 2207.00986.
    "der_hyperbolic": ("der", {"encoder": "hyperbolic"}),  # S-RYM, Cetin et al. 2023, arXiv 2210.01542.
}


def environment_name(game: str, max_episode_steps: int = MAX_EPISODE_STEPS) -> str:
  """`atari:<Game>`, with the episode cap as a query option when it differs from the protocol's."""
  return f"atari:{game}" if max_episode_steps == MAX_EPISODE_STEPS else f"atari:{game}?max_episode_steps={max_episode_steps}"


def experiment_config(agent: str, game: str, seed: int, run_dir: str, overrides: Mapping[str, str] = (),
                      steps: int = STEPS, eval_episodes: int = EVAL_EPISODES,
                      max_episode_steps: int = MAX_EPISODE_STEPS, progress: bool = False):
  """One Atari 100k run as a `sync` ExperimentConfig; evaluation once, at the end of the budget."""
  from repertory.launch.experiment import ExperimentConfig
  return ExperimentConfig(
      agent=agent, env=environment_name(game, max_episode_steps), run_dir=run_dir, launcher="sync", seed=seed,
      max_actor_steps=steps, eval_every=steps, eval_episodes=eval_episodes,
      agent_overrides=tuple(sorted((str(k), str(v)) for k, v in dict(overrides).items())), progress=progress)


def named_experiment(name: str, game: str, seed: int, run_dir: str, **kwargs):
  """`named_experiment("der_alix", "Pong", 0, run_dir)` → the sync ExperimentConfig of that variant."""
  from repertory.errors import ConfigError
  if name not in NAMED_CONFIGS:
    raise ConfigError(f"unknown Atari 100k experiment '{name}'; choose one of {', '.join(NAMED_CONFIGS)}")
  agent, overrides = NAMED_CONFIGS[name]
  merged = {**overrides, **dict(kwargs.pop("overrides", {}))}
  return experiment_config(agent, game, seed, run_dir, overrides=merged, **kwargs)
