"""A non-stationary task from any vector environment: its observation entries permuted anew every N steps.

`make("gym:CartPole-v1?permute_every=5000")` is CartPole whose observation vector is shuffled by a fresh
random permutation every 5000 environment steps of that environment (counted across episodes; a change
waits for the episode boundary, so no episode mixes two tasks). Task k's permutation comes from
(`permute_seed`, k) alone, not from the environment's seed, so every actor of a run sees the same sequence
of tasks, each on its own clock (an evaluator, stepping less, is on an earlier task). This is
the permuted-input protocol of the plasticity-loss literature (e.g. Dohare et al. 2021, arXiv 2108.06325,
"Permuted MNIST"; Lyle et al. 2023, arXiv 2303.01486, §2), applied to an RL observation.
"""

from __future__ import annotations

import dm_env
import numpy as np

from repertory.environments.dm_env_wrappers import Wrapper
from repertory.errors import ConfigError


def task_permutation(seed: int, task: int, size: int) -> np.ndarray:
  """Task `task`'s permutation of `size` entries; task 0 is the identity (the environment as it is)."""
  if task == 0:
    return np.arange(size)
  return np.random.default_rng([seed, task]).permutation(size)


class PermutedObservations(Wrapper):
  """Observations x ↦ x[perm_k] with k = (steps taken when the episode began) // `period`."""

  def __init__(self, environment: dm_env.Environment, period: int, seed: int):
    super().__init__(environment)
    shape = environment.observation_spec().shape
    if len(shape) != 1:
      raise ConfigError(f"permute_every needs vector observations, but this environment's are {shape}; "
                        "use it with a gym or popgym task (for Atari, a game sequence: "
                        "atari:Pong,Boxing?switch_every=N)")
    if period < 1:
      raise ConfigError(f"permute_every={period} must be >= 1 (environment steps per task)")
    self._period, self._seed, self._size = period, seed, shape[0]
    self._steps = 0
    self._task = 0
    self._permutation = task_permutation(seed, 0, self._size)

  @property
  def task(self) -> int:
    return self._task

  def _permuted(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    return timestep._replace(observation=np.asarray(timestep.observation)[self._permutation])

  def _begin_episode(self) -> None:
    task = self._steps // self._period
    if task != self._task:
      self._task, self._permutation = task, task_permutation(self._seed, task, self._size)

  def reset(self) -> dm_env.TimeStep:
    self._begin_episode()
    return self._permuted(self._environment.reset())

  def step(self, action) -> dm_env.TimeStep:
    timestep = self._environment.step(action)
    if timestep.first():  # the wrapped environment began a new episode (dm_env: a step after the last)
      self._begin_episode()
    else:
      self._steps += 1
    return self._permuted(timestep)
