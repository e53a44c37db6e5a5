"""Runs an actor against a dm_env environment, step by step or episode by episode."""

import dataclasses
import time
from typing import Any, List, Optional, Sequence

import dm_env
import numpy as np

from repertory.utils.timing import NoClock


@dataclasses.dataclass
class EpisodeStats:
  episode_return: float
  episode_length: int
  game_over: bool = True  # False when the episode ended on a life loss only (Atari training)


class EnvironmentRecord:
  """The resets and actions a loop gave its environment, in order: doing them again on a fresh environment
  made with the same seed brings it to the same state (`replay`), for any deterministic environment."""

  def __init__(self):
    self._actions: Optional[np.ndarray] = None  # grown by doubling
    self._count = 0
    self._resets: List[int] = []  # the number of actions taken before each reset

  def reset(self) -> None:
    self._resets.append(self._count)

  def step(self, action: Any) -> None:
    action = np.asarray(action)
    if self._actions is None:
      self._actions = np.empty((1024,) + action.shape, action.dtype)
    elif self._count == len(self._actions):
      self._actions = np.concatenate([self._actions, np.empty_like(self._actions)])
    self._actions[self._count] = action
    self._count += 1

  def snapshot_state(self) -> dict:
    actions = self._actions[:self._count].copy() if self._actions is not None else None
    return {"actions": actions, "resets": list(self._resets)}

  def restore_snapshot(self, state: dict) -> None:
    self._actions, self._resets = state["actions"], list(state["resets"])
    self._count = 0 if self._actions is None else len(self._actions)

  def replay(self, environment: Any) -> None:
    """Resets and steps `environment` as the recorded loop did."""
    resets = self._resets
    r = 0
    for i in range(self._count + 1):
      while r < len(resets) and resets[r] == i:
        environment.reset()
        r += 1
      if i < self._count:
        environment.step(self._actions[i])


class EnvironmentLoop:
  """Continues episodes across calls, so callers can interleave acting with learning or stopping.

  With `record`, the loop keeps an `EnvironmentRecord`; its snapshot then holds the environment's state,
  restored by replaying the record into the fresh environment (`replay_environment`)."""

  SNAPSHOT_FIELDS = ("_timestep", "_return", "_length", "total_steps", "record")

  def __init__(self, environment: dm_env.Environment, actor: Any, update_actor: bool = True, record: bool = False,
               index: int = 0):
    self._env = environment
    self._actor = actor
    self._update_actor = update_actor
    self._index = index  # this environment's row in an actor that serves several (`EvaluationEpisodes`)
    self._timestep: Optional[dm_env.TimeStep] = None
    self._return = 0.0
    self._length = 0
    self.total_steps = 0
    self.record = EnvironmentRecord() if record else None
    self.clock = NoClock()  # a `PhaseClock` times `run_steps`: "policy", and "environment" (with the actor's adder)

  def replay_environment(self) -> None:
    if self.record is not None:
      self.record.replay(self._env)

  def run_steps(self, num_steps: int) -> List[EpisodeStats]:
    """Takes exactly `num_steps` environment steps; returns the episodes that ended meanwhile."""
    finished = []
    for _ in range(num_steps):
      with self.clock.phase("environment"):  # a reset, when an episode starts
        observation = self.begin_step()
      with self.clock.phase("policy"):
        action = self._actor.select_action(observation)
      with self.clock.phase("environment"):
        episode = self.end_step(action)
      if episode is not None:
        finished.append(episode)
    return finished

  def restart(self) -> None:
    """The next step starts a new episode."""
    self._timestep = None

  def begin_step(self) -> Any:
    """The observation the next action is chosen for (resetting the environment after an episode's end)."""
    if self._timestep is None or self._timestep.last():
      if self.record is not None:
        self.record.reset()
      self._timestep = self._env.reset()
      self._actor.observe_first(self._timestep, self._index)
      self._return, self._length = 0.0, 0
    return self._timestep.observation

  def end_step(self, action: Any) -> Optional[EpisodeStats]:
    """Takes `action` in the environment; the episode's statistics when it ended with this step."""
    if self.record is not None:
      self.record.step(action)
    self._timestep = self._env.step(action)
    self._actor.observe(action, self._timestep, self._index)
    if self._update_actor:
      self._actor.update()
    self._return += float(self._timestep.reward or 0.0)
    self._length += 1
    self.total_steps += 1
    if self._timestep.last():
      return EpisodeStats(self._return, self._length, getattr(self._env, "last_game_over", True))
    return None

  def run_episodes(self, num_episodes: int, max_seconds: Optional[float] = None) -> List[EpisodeStats]:
    """Runs whole episodes from a fresh reset (evaluation)."""
    self.restart()
    episodes: List[EpisodeStats] = []
    start = time.monotonic()
    while len(episodes) < num_episodes:
      episodes += self.run_steps(1)
      if max_seconds is not None and time.monotonic() - start > max_seconds:
        break
    return episodes


class EvaluationEpisodes:
  """Evaluation episodes on E environments at once, with one batched actor call per step for all of them.

  Environment i plays its own share of the episodes (n // E, one more for the first n % E), decided before
  any is played: a pool that gave the next episode to whichever environment finished first would count short
  episodes more often than long ones. Environment i reaches the actor as row i (`observe_first(timestep, i)`),
  so the actor must serve E rows (e.g. built with E adders, `None` for evaluation). An environment done with its
  share sits out the remaining steps; its row of the batch is a blank observation whose action is dropped.
  `record` as for `EnvironmentLoop`, one record per environment.
  """

  SNAPSHOT_FIELDS = ("loops",)

  def __init__(self, environments: Sequence[dm_env.Environment], actor: Any, record: bool = False):
    self._actor = actor
    self.loops = [EnvironmentLoop(environment, actor, update_actor=False, record=record, index=i)
                  for i, environment in enumerate(environments)]

  def replay_environment(self) -> None:
    for loop in self.loops:
      loop.replay_environment()

  def run_episodes(self, num_episodes: int, max_seconds: Optional[float] = None) -> List[EpisodeStats]:
    """`num_episodes` whole episodes from fresh resets (fewer when `max_seconds` runs out)."""
    count = len(self.loops)
    shares = [num_episodes // count + (i < num_episodes % count) for i in range(count)]
    finished: List[List[EpisodeStats]] = [[] for _ in self.loops]
    for loop in self.loops:
      loop.restart()
    start = time.monotonic()
    while True:
      playing = [len(done) < share for done, share in zip(finished, shares)]
      if not any(playing) or (max_seconds is not None and time.monotonic() - start > max_seconds):
        break
      observations = [loop.begin_step() if on else None for loop, on in zip(self.loops, playing)]
      if not all(playing):
        blank = np.zeros_like(next(o for o in observations if o is not None))
        observations = [blank if o is None else o for o in observations]
      actions = self._actor.select_actions(np.stack(observations))
      for loop, on, action, done in zip(self.loops, playing, actions, finished):
        episode = loop.end_step(action) if on else None
        if episode is not None:
          done.append(episode)
    return [episode for done in finished for episode in done]


def evaluation_loop(environments: Sequence[dm_env.Environment], actor: Any, record: bool = False) -> Any:
  """Evaluation episodes on `environments`: one `EnvironmentLoop` (episode after episode) for one environment,
  else `EvaluationEpisodes`; both have `run_episodes` and `replay_environment`."""
  if len(environments) == 1:
    return EnvironmentLoop(environments[0], actor, update_actor=False, record=record)
  return EvaluationEpisodes(environments, actor, record)


class VectorEnvironmentLoop:
  """Steps a vectorised environment (see environments/vector.py) with one batched actor call per step.

  Environment i's stream reaches the actor as `observe_first(timestep, i)` / `observe(action, timestep, i)`,
  exactly as N single-environment loops would deliver it. `record` as for `EnvironmentLoop`.
  """

  SNAPSHOT_FIELDS = ("_timesteps", "_returns", "_lengths", "total_steps", "record")

  def __init__(self, environment: Any, actor: Any, update_actor: bool = True, record: bool = False):
    self._env = environment
    self._actor = actor
    self._update_actor = update_actor
    self._timesteps = None
    n = environment.num_envs
    self._returns = np.zeros(n)
    self._lengths = np.zeros(n, np.int64)
    self.total_steps = 0
    self.record = EnvironmentRecord() if record else None
    self.clock = NoClock()  # as `EnvironmentLoop.clock`

  def replay_environment(self) -> None:
    if self.record is not None:
      self.record.replay(self._env)

  def run_steps(self, num_steps: int) -> List[EpisodeStats]:
    """Takes `num_steps` batched steps (num_steps × num_envs environment steps, resets included)."""
    finished = []
    if self._timesteps is None:
      if self.record is not None:
        self.record.reset()
      self._timesteps = self._env.reset()
      for i in range(self._env.num_envs):
        self._actor.observe_first(self._timesteps.timestep(i), i)
    for _ in range(num_steps):
      with self.clock.phase("policy"):
        actions = self._actor.select_actions(self._timesteps.observation)
      with self.clock.phase("environment"):
        finished += self._step(actions)
      if self._update_actor:
        self._actor.update()
      self.total_steps += self._env.num_envs
    return finished

  def _step(self, actions: np.ndarray) -> List[EpisodeStats]:
    """Steps every environment, hands each its transition; the episodes that ended."""
    finished = []
    if self.record is not None:
      self.record.step(actions)
    self._timesteps = self._env.step(actions)
    for i in range(self._env.num_envs):
      timestep = self._timesteps.timestep(i)
      if timestep.first():
        self._actor.observe_first(timestep, i)
        self._returns[i], self._lengths[i] = 0.0, 0
        continue
      self._actor.observe(actions[i], timestep, i)
      self._returns[i] += float(timestep.reward)
      self._lengths[i] += 1
      if timestep.last():
        finished.append(EpisodeStats(float(self._returns[i]), int(self._lengths[i])))
    return finished


def mean_return(episodes: List[EpisodeStats]) -> float:
  return float(np.mean([e.episode_return for e in episodes])) if episodes else float("nan")
