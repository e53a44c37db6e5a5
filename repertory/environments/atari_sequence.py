"""`atari:<Game>,<Game>,...?switch_every=N` — a non-stationary sequence of Atari games.

The agent plays the first game for N environment steps, then the second, and so on, cycling through the
list (task k plays game k mod len(games)). Steps are counted across episodes; a switch waits for the end
of a *game* (`last_game_over`), so no game is cut off at a lost life and no episode mixes two games. Every
game uses ALE's full action set of 18 actions (`full_action_space=True`), so one network head fits all of
them; observations keep the Atari-100k shape (84, 84, 4). Each game keeps its own emulator, built when it
is first played; a game that is played again starts a new game.

This is the sequential-games protocol of the plasticity literature (Abbas et al. 2023, "Loss of Plasticity
in Continual Deep Reinforcement Learning", arXiv 2303.07507: one agent trained on Atari games in turn, each
game coming back in later cycles), the pixel counterpart of `nonstationary.PermutedObservations`. Like it,
each actor and the evaluator run the sequence on their own clocks.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Sequence

import dm_env

from repertory.environments.atari import AtariConfig, AtariEnvironment, rom_id
from repertory.environments.dm_env_wrappers import Wrapper
from repertory.errors import ConfigError


def parse_games(text: str) -> list[str]:
  """`"Pong,Boxing"` → `["Pong", "Boxing"]`, each checked against ale-py's roms."""
  games = [g.strip() for g in text.split(",")]
  if any(not g for g in games):
    raise ConfigError(f"atari game list '{text}' has an empty name; write e.g. atari:Pong,Boxing,Freeway")
  for game in games:
    rom_id(game)
  return games


class AtariGameSequence(Wrapper):
  """The game of task k = (steps taken when the current game began) // `switch_every`, cycling."""

  def __init__(self, games: Sequence[str], switch_every: int, seed: int = 0, config: AtariConfig = AtariConfig()):
    if len(games) < 2:
      raise ConfigError(f"switch_every needs two or more games, got {list(games)}; write e.g. "
                        "atari:Pong,Boxing?switch_every=50000 (one game never changes)")
    if not isinstance(switch_every, int) or isinstance(switch_every, bool) or switch_every < 1:
      raise ConfigError(f"switch_every={switch_every!r} must be a whole number of steps >= 1")
    self._games = tuple(games)
    self._period = switch_every
    self._seed = seed
    self._config = dataclasses.replace(config, full_action_space=True)
    self._emulators: Dict[int, AtariEnvironment] = {}
    self._steps = 0
    self._task = 0
    self._needs_reset = True
    super().__init__(self._emulator(0))

  @property
  def task(self) -> int:
    return self._task

  def _emulator(self, task: int) -> AtariEnvironment:
    index = task % len(self._games)
    if index not in self._emulators:
      self._emulators[index] = AtariEnvironment(self._games[index], seed=self._seed, config=self._config)
    return self._emulators[index]

  def reset(self) -> dm_env.TimeStep:
    task = self._steps // self._period
    if task != self._task and self._environment.last_game_over:
      self._task = task
      self._environment = self._emulator(task)
    self._needs_reset = False
    return self._environment.reset()

  def step(self, action) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    timestep = self._environment.step(action)
    self._steps += 1
    self._needs_reset = timestep.last()
    return timestep
