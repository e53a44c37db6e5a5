"""`atari:<Game>`: the Atari-100k preprocessing protocol on real ale-py games."""

import dm_env
import numpy as np
import pytest

from repertory import environments
from repertory.environments import atari
from repertory.errors import ConfigError


def test_observation_spec_and_dtypes():
  env = environments.make("atari:Pong", seed=0)
  assert env.observation_spec().shape == (84, 84, 4)
  assert env.observation_spec().dtype == np.uint8
  assert isinstance(env.action_spec(), dm_env.specs.DiscreteArray)
  assert env.action_spec().num_values == 6  # Pong's minimal action set.
  timestep = env.reset()
  assert timestep.first() and timestep.observation.shape == (84, 84, 4)
  assert timestep.observation.dtype == np.uint8
  # Zero-padded stack at the start of an episode, the current frame in the last slot.
  assert not timestep.observation[..., :3].any() and timestep.observation[..., 3].any()
  timestep = env.step(0)
  assert timestep.reward.dtype == np.float32 and timestep.discount == np.float32(1.0)
  assert env.ale.getEpisodeFrameNumber() == env.noops_taken + 4  # frame_skip = 4.


def test_game_names_and_full_action_space():
  for name in ("Pong", "pong", "MsPacman", "BattleZone", "ms_pacman"):
    environments.make(f"atari:{name}")
  assert environments.make("atari:Pong", full_action_space=True).action_spec().num_values == 18
  with pytest.raises(ConfigError, match="NotAGame"):
    environments.make("atari:NotAGame")


def test_noops_at_reset_are_between_one_and_noop_max_and_vary_with_seed():
  counts = []
  for seed in range(12):
    env = environments.make("atari:Pong", seed=seed, noop_max=30)
    env.reset()
    assert 1 <= env.noops_taken <= 30
    assert env.ale.getEpisodeFrameNumber() == env.noops_taken  # They were really emulated.
    counts.append(env.noops_taken)
  assert len(set(counts)) > 3


def test_noop_max_zero_takes_no_noops():
  observations = []
  for seed in (0, 1):
    env = environments.make("atari:Pong", seed=seed, noop_max=0)
    observations.append(env.reset().observation)
    assert env.noops_taken == 0 and env.ale.getEpisodeFrameNumber() == 0
  np.testing.assert_array_equal(*observations)  # Same start state without no-ops.


def _play_until_last(env, rng, limit=5_000):
  timesteps = []
  for _ in range(limit):
    timestep = env.step(rng.integers(env.action_spec().num_values))
    timesteps.append(timestep)
    if timestep.last():
      return timesteps
  raise AssertionError("no LAST step within the limit")


def test_life_loss_is_terminal_in_training_and_the_game_continues():
  env = environments.make("atari:Breakout", seed=0, training=True)
  rng = np.random.default_rng(0)
  env.reset()
  lives = env.lives
  assert lives == 5
  last = _play_until_last(env, rng)[-1]
  assert last.discount == 0.0 and env.lives == lives - 1
  assert not env.last_game_over  # A life loss, not the end of the game.
  frame, score = env.ale.getEpisodeFrameNumber(), env.game_return
  timestep = env.reset()
  assert timestep.first() and env.noops_taken == 0
  assert env.ale.getEpisodeFrameNumber() == frame  # Emulator not reset: same game goes on.
  assert env.game_return == score and env.lives == lives - 1


def test_life_loss_is_not_terminal_in_evaluation():
  for options in ({"training": False}, {"training": False, "terminal_on_life_loss": True}):
    env = environments.make("atari:Breakout", seed=0, **options)
    env.reset()
    timesteps = _play_until_last(env, np.random.default_rng(0))
    assert env.lives == 0 and env.last_game_over  # Only the real game over ends the episode.
    assert timesteps[-1].discount == 0.0
    assert sum(float(t.reward) for t in timesteps) == env.game_return


def test_terminal_on_life_loss_can_be_turned_off_in_training():
  env = environments.make("atari:Breakout", seed=0, terminal_on_life_loss=False)
  env.reset()
  _play_until_last(env, np.random.default_rng(0))
  assert env.lives == 0 and env.last_game_over


def test_episode_cap_truncates_with_discount_one():
  env = environments.make("atari:Pong", seed=0, max_episode_steps=50)
  env.reset()
  for step in range(1, 51):
    timestep = env.step(0)
    assert timestep.last() == (step == 50)
  assert timestep.discount == 1.0 and env.last_game_over
  env.reset()  # A new game starts after the cap.
  assert env.game_steps == 0 and env.ale.getEpisodeFrameNumber() == env.noops_taken


def test_max_pool_and_area_resize_units():
  previous = np.array([[0, 200], [7, 3]], np.uint8)
  last = np.array([[5, 100], [7, 9]], np.uint8)
  np.testing.assert_array_equal(atari.max_pool_frames(previous, last), [[5, 200], [7, 9]])
  frame = np.arange(16, dtype=np.uint8).reshape(4, 4)
  # An integer factor is the mean of each 2×2 block: (0+1+4+5)/4 = 2.5 → 2 (round half even).
  np.testing.assert_array_equal(atari.resize_area(frame, 2, 2), [[2, 4], [10, 12]])
  weights = atari.area_weights(210, 84)
  np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
  constant = np.full((210, 160), 77, np.uint8)
  np.testing.assert_array_equal(atari.resize_area(constant, 84, 84), 77)


@pytest.mark.parametrize("height, width", [(84, 84), (64, 96), (105, 80), (50, 33)])
def test_block_wise_area_resize_is_the_exact_area_mean(height, width):
  """Against the area mean over the whole frame in float64: equal wherever it is not within float32 rounding
  of a half (where rounding may go either way)."""
  frame = np.random.default_rng(height).integers(0, 256, (210, 160)).astype(np.uint8)
  rows, columns = atari.area_weights(210, height).astype(np.float64), atari.area_weights(160, width).astype(np.float64)
  exact = rows @ frame @ columns.T
  resized = atari.resize_area(frame, height, width).astype(np.float64)
  near_half = np.abs(exact - np.floor(exact) - 0.5) < 1e-3
  np.testing.assert_array_equal(resized[~near_half], np.rint(exact)[~near_half])
  assert np.abs(resized - exact).max() <= 0.5 + 1e-3


def test_observation_is_the_max_of_the_last_two_raw_frames():
  env = environments.make("atari:Breakout", seed=0, noop_max=0, frame_stack=1)
  env.reset()
  for _ in range(3):
    env.step(1)  # FIRE launches the ball, so consecutive frames differ.
  for action in (2, 3, 0):
    state = env.ale.cloneState()
    timestep = env.step(action)
    env.ale.restoreState(state)
    frames = []
    for _ in range(4):
      env.ale.act(env.action_set[action])
      frames.append(env.ale.getScreenGrayscale())
    assert not np.array_equal(frames[2], frames[3])
    expected = atari.resize_area(np.maximum(frames[2], frames[3]), 84, 84)
    np.testing.assert_array_equal(timestep.observation[..., 0], expected)
    assert not np.array_equal(atari.resize_area(frames[3], 84, 84), expected)  # Pooling mattered.


def test_same_seed_same_actions_same_observations():
  def rollout(seed):
    env = environments.make("atari:Breakout", seed=seed)
    rng = np.random.default_rng(123)
    observations = [env.reset().observation]
    for _ in range(60):
      observations.append(env.step(rng.integers(4)).observation)
    return np.stack(observations), env.noops_taken
  first, noops = rollout(5)
  second, noops_again = rollout(5)
  np.testing.assert_array_equal(first, second)
  assert noops == noops_again


def test_invalid_options():
  with pytest.raises(ConfigError):
    environments.make("atari:Pong", frame_skip=0)
  with pytest.raises(ConfigError):
    environments.make("atari:Pong", sticky_actions=1.5)
