"""`atari:<Game>,<Game>?switch_every=N`: real ale-py games played one after the other."""

import numpy as np
import pytest

from repertory import environments
from repertory.errors import ConfigError


def _play(env, steps, seed=0):
  """Random full-action-set play; returns (game, task, step count, last_game_over before) at every FIRST."""
  rng = np.random.default_rng(seed)
  starts, count, timestep = [], 0, env.reset()
  starts.append((env.game, env.task, 0, None, timestep.observation))  # (game, task, steps, game over, obs)
  for _ in range(steps):
    ended_game = env.last_game_over
    timestep = env.step(rng.integers(18))
    if timestep.first():
      starts.append((env.game, env.task, count, ended_game, timestep.observation))
    else:
      count += 1
  return starts


def test_games_change_every_n_steps_only_at_a_game_over_and_cycle():
  env = environments.make("atari:Pong,Boxing?switch_every=150&max_episode_steps=100", seed=4)
  assert env.action_spec().num_values == 18 and env.observation_spec().shape == (84, 84, 4)
  starts = _play(env, 700)
  assert [(game, task, at) for game, task, at, _, _ in starts] == [
      ("Pong", 0, 0), ("Pong", 0, 100), ("Boxing", 1, 200), ("Pong", 2, 300), ("Pong", 2, 400),
      ("Boxing", 3, 500), ("Pong", 4, 600)]
  # 100-step games: the switch due at step 150 waits for the game that began at 100 to end, at 200.


def test_each_game_of_the_sequence_is_that_game_with_the_full_action_set():
  sequence = _play(environments.make("atari:Pong,Boxing?switch_every=50&max_episode_steps=60", seed=2), 130)
  first_boxing = next(obs for game, _, _, _, obs in sequence if game == "Boxing")
  plain = environments.make("atari:Boxing?full_action_space=true&max_episode_steps=60", seed=2)
  np.testing.assert_array_equal(first_boxing, plain.reset().observation)  # the same emulator, seed and no-ops
  plain_pong = environments.make("atari:Pong?full_action_space=true", seed=2)
  np.testing.assert_array_equal(sequence[0][4], plain_pong.reset().observation)


def test_a_lost_life_does_not_switch_the_game():
  # Breakout has 5 lives; in training a lost life ends the episode but not the game.
  env = environments.make("atari:Breakout,Pong?switch_every=10", seed=0)
  starts = _play(env, 3000)
  breakout_continues = [s for s in starts[1:] if s[3] is False]  # episodes that began after a lost life
  assert breakout_continues and all(game == "Breakout" for game, *_ in breakout_continues)
  assert any(game == "Pong" for game, *_ in starts)
  first_pong = next(i for i, s in enumerate(starts) if s[0] == "Pong")
  assert starts[first_pong][3] is True  # only a game over hands over to the next game


@pytest.mark.parametrize("name, message", [
    ("atari:Pong?switch_every=10", "two or more games"),
    ("atari:Pong,Boxing", "switch_every"),
    ("atari:Pong,,Boxing?switch_every=10", "empty name"),
    ("atari:Pong,Nonsense?switch_every=10", "unknown Atari game 'Nonsense'"),
    ("atari:Pong,Boxing?switch_every=0", ">= 1"),
    ("atari:Pong,Boxing?switch_every=2.5", "whole number"),
    ("atari:Pong?permute_every=10", "game sequence"),
])
def test_bad_sequences_are_one_line_errors(name, message):
  with pytest.raises(ConfigError, match=message) as error:
    environments.make(name)
  assert "\n" not in str(error.value)
