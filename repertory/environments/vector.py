"""Vectorised environments: N environments stepped together, with dm_env step types per environment.

Auto-reset follows dm_env: after an environment emits LAST, the next `step` call ignores its action
and returns that environment's FIRST timestep (reward 0, discount 1).

Two backends:
  * `BatchedEnvironment` — N repertory environments in one Python loop; transition for transition the
    same as N single environments with the same seeds and actions (the correctness reference).
  * `AtariVectorEnvironment` — ale-py's `AtariVectorEnv`, which steps the emulators and does the
    Atari preprocessing in C++ threads. Its protocol differs from `atari:` in small ways that the
    benchmark names: no-op counts come from ale-py's own RNG, the frame stack starts from the first
    frame repeated rather than zeros, and a FIRE is pressed at reset in games that need it.
"""

from typing import Any, List, NamedTuple, Sequence

import dm_env
import numpy as np

from repertory.errors import ConfigError


class BatchedTimeStep(NamedTuple):
  step_type: np.ndarray  # [N] of dm_env.StepType values
  reward: np.ndarray  # [N] float32
  discount: np.ndarray  # [N] float32
  observation: np.ndarray  # [N, ...]

  def timestep(self, i: int) -> dm_env.TimeStep:
    return dm_env.TimeStep(dm_env.StepType(int(self.step_type[i])), self.reward[i], self.discount[i],
                           self.observation[i])


class BatchedEnvironment:
  """N dm_env environments behind one batched interface (a Python loop)."""

  def __init__(self, environments: Sequence[dm_env.Environment]):
    self._envs = list(environments)
    self.num_envs = len(self._envs)
    self._last = [True] * self.num_envs

  def observation_spec(self):
    return self._envs[0].observation_spec()

  def action_spec(self):
    return self._envs[0].action_spec()

  def _stack(self, timesteps: List[dm_env.TimeStep]) -> BatchedTimeStep:
    self._last = [t.last() for t in timesteps]
    return BatchedTimeStep(
        np.array([int(t.step_type) for t in timesteps], np.int32),
        np.array([0.0 if t.reward is None else t.reward for t in timesteps], np.float32),
        np.array([1.0 if t.discount is None else t.discount for t in timesteps], np.float32),
        np.stack([t.observation for t in timesteps]))

  def reset(self) -> BatchedTimeStep:
    return self._stack([env.reset() for env in self._envs])

  def step(self, actions: np.ndarray) -> BatchedTimeStep:
    return self._stack([env.reset() if last else env.step(action)
                        for env, last, action in zip(self._envs, self._last, actions)])

  def close(self) -> None:
    for env in self._envs:
      env.close()


class AtariVectorEnvironment:
  """ale-py's C++ `AtariVectorEnv` with the Atari-100k settings (no sticky actions, frame skip 4 with
  max-pool, 84×84 grayscale, 4-frame stack, 30 no-ops, life loss terminal when training, 27k cap)."""

  def __init__(self, game: str, num_envs: int, seed: int = 0, training: bool = True, num_threads: int = 0,
               max_episode_steps: int = 27_000):
    from ale_py.vector_env import AtariVectorEnv
    from repertory.environments.atari import rom_id
    self._env = AtariVectorEnv(
        rom_id(game), num_envs, num_threads=num_threads, repeat_action_probability=0.0, frameskip=4,
        maxpool=True, img_height=84, img_width=84, grayscale=True, stack_num=4, noop_max=30,
        episodic_life=training, reward_clipping=False, max_num_frames_per_episode=4 * max_episode_steps,
        autoreset_mode="NextStep")
    self.num_envs = num_envs
    self._seed = seed
    self._num_actions = int(self._env.single_action_space.n)
    self._last = np.zeros(num_envs, bool)

  def observation_spec(self):
    return dm_env.specs.Array((84, 84, 4), np.uint8, "observation")

  def action_spec(self):
    return dm_env.specs.DiscreteArray(self._num_actions, name="action")

  def _convert(self, observations, rewards, terminated, truncated, first) -> BatchedTimeStep:
    last = np.logical_or(terminated, truncated)
    step_type = np.where(first, int(dm_env.StepType.FIRST), np.where(last, int(dm_env.StepType.LAST), int(dm_env.StepType.MID)))
    self._last = last
    return BatchedTimeStep(step_type.astype(np.int32), np.where(first, 0.0, rewards).astype(np.float32),
                           np.where(terminated, 0.0, 1.0).astype(np.float32),
                           np.ascontiguousarray(np.moveaxis(observations, 1, -1)))

  def reset(self) -> BatchedTimeStep:
    observations, _ = self._env.reset(seed=self._seed)
    n = self.num_envs
    return self._convert(observations, np.zeros(n), np.zeros(n, bool), np.zeros(n, bool), np.ones(n, bool))

  def step(self, actions: np.ndarray) -> BatchedTimeStep:
    first = self._last.copy()  # NextStep auto-reset: these environments reset in this call
    observations, rewards, terminated, truncated, _ = self._env.step(np.asarray(actions, np.int64))
    return self._convert(observations, rewards, terminated & ~first, truncated & ~first, first)

  def close(self) -> None:
    self._env.close()


def make_vector(name: str, num_envs: int, seed: int = 0, backend: str = "auto", **options: Any):
  """`num_envs` copies of `name`; environment i is seeded `seed + i` (python backend).

  backend: "python" (BatchedEnvironment of `make(name)`), "ale" (AtariVectorEnv, atari: names only), or
  "auto" (ale for atari:, python otherwise).
  """
  from repertory import environments
  if num_envs < 1:
    raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
  if backend == "auto":
    backend = "ale" if name.startswith("atari:") else "python"
  if backend == "ale":
    if not name.startswith("atari:"):
      raise ConfigError(f"the ale vector backend serves atari: environments only, not '{name}'")
    return AtariVectorEnvironment(name.split(":", 1)[1], num_envs, seed, **options)
  if backend != "python":
    raise ConfigError(f"unknown vector backend '{backend}'; choose auto, python or ale")
  return BatchedEnvironment([environments.make(name, seed=seed + i, **options) for i in range(num_envs)])
