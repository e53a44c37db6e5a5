"""`atari:<Game>` — Atari 2600 through ale-py with the Atari-100k preprocessing protocol.

Protocol of Atari 100k (Kaiser et al. 2019, arXiv 1903.00374; DER, van Hasselt et al. 2019,
arXiv 1906.05243; as run by Dopamine `atari_lib.AtariPreprocessing` with DER.gin / BBF.gin;
sticky actions as in Machado et al. 2018, arXiv 1709.06009):
  * no sticky actions (`repeat_action_probability = 0`);
  * `noop_max` random no-ops at the start of each game: a uniform count in 1..noop_max
    (Mnih et al. 2015), 0 disables them;
  * `frame_skip` = 4 emulator frames per agent step, rewards summed, the observation is the
    pixel-wise max over the last two emulated frames (removes sprite flicker);
  * grayscale, area-resized to `screen_size` × `screen_size` (84; OpenCV INTER_AREA, computed
    with exact area weights in NumPy, equal to OpenCV up to rounding);
  * the last `frame_stack` (4) frames stacked on the last axis: observation uint8
    (84, 84, 4). At the start of an episode the older slots are zeros (Dopamine's state reset);
  * `terminal_on_life_loss` (default: equal to `training`, always False when `training=False`):
    losing a life ends the *episode* with LAST and discount 0, but the next `reset()` continues
    the same game without resetting the emulator (no no-ops either), like Dopamine's runner;
  * `max_episode_steps` = 27 000 agent steps (108k frames) per game; reaching it gives LAST with
    discount 1 (a truncation), and the next reset starts a new game;
  * `full_action_space=False`: the game's minimal action set.
Rewards are the raw game rewards as float32 (clip them in the agent if the method asks).

True game scores: because life loss splits a game into several episodes, the environment keeps
  * `last_game_over: bool` — True when the latest LAST step ended the *game* (the emulator's game
    over, or the `max_episode_steps` cap), i.e. the next `reset()` starts a new game; False after a
    life-loss LAST and on non-LAST steps;
  * `game_return: float` — the raw score of the current game so far; when `last_game_over` is
    True it is the finished game's score (what evaluation reports as the game score);
  * `noops_taken: int` — the no-ops applied at the latest reset (0 after a life-loss continue);
  * `lives: int`, `game_steps: int` (agent steps since the game started).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math

import dm_env
import numpy as np
from dm_env import specs

from repertory.environments.dm_env_wrappers import StoredSpecs
from repertory.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class AtariConfig:
  """Atari-100k preprocessing options (Dopamine DER.gin / BBF.gin defaults)."""

  sticky_actions: float = 0.0  # repeat_action_probability; Atari 100k uses none (DER.gin).
  noop_max: int = 30  # Mnih et al. 2015 (Nature DQN): up to 30 no-ops at the start.
  frame_skip: int = 4  # Dopamine AtariPreprocessing.frame_skip.
  screen_size: int = 84  # Dopamine AtariPreprocessing.screen_size.
  frame_stack: int = 4  # Dopamine stack_size.
  training: bool = True  # False: evaluation, never terminal on life loss.
  terminal_on_life_loss: bool | None = None  # None → equal to `training` (DER.gin: True).
  max_episode_steps: int = 27_000  # Dopamine max_steps_per_episode (108k frames).
  full_action_space: bool = False  # Minimal action set, as in Dopamine.

  def __post_init__(self):
    if not 0.0 <= self.sticky_actions <= 1.0:
      raise ConfigError(f"atari option sticky_actions={self.sticky_actions} must be in [0, 1]")
    for name in ("noop_max",):
      if getattr(self, name) < 0:
        raise ConfigError(f"atari option {name}={getattr(self, name)} must be >= 0")
    for name in ("frame_skip", "screen_size", "frame_stack", "max_episode_steps"):
      if getattr(self, name) < 1:
        raise ConfigError(f"atari option {name}={getattr(self, name)} must be >= 1")

  @property
  def life_loss_is_terminal(self) -> bool:
    if not self.training:
      return False
    return self.training if self.terminal_on_life_loss is None else self.terminal_on_life_loss


@functools.lru_cache(maxsize=None)
def _game_names() -> dict[str, str]:
  """Maps accepted spellings (PascalCase `MsPacman`, rom id `ms_pacman`, lower case) → rom id."""
  import ale_py.roms  # pylint: disable=g-import-not-at-top

  names = {}
  for rom_id in ale_py.roms.get_all_rom_ids():
    pascal = rom_id.title().replace("_", "")
    for spelling in (pascal, rom_id, pascal.lower()):
      names[spelling] = rom_id
  return names


def available() -> list[str]:
  """Game names accepted by `atari:<Game>` (PascalCase, e.g. `Pong`, `MsPacman`)."""
  import ale_py.roms  # pylint: disable=g-import-not-at-top
  return sorted(r.title().replace("_", "") for r in ale_py.roms.get_all_rom_ids())


def rom_id(game: str) -> str:
  """The ale-py rom id for a game name, or ConfigError naming how to list valid ones."""
  names = _game_names()
  for spelling in (game, game.lower(), game.replace("-", "_").lower()):
    if spelling in names:
      return names[spelling]
  raise ConfigError(f"unknown Atari game '{game}'; list valid games with "
                    "repertory.environments.available('atari') (e.g. Pong, Breakout, MsPacman)")


def max_pool_frames(previous: np.ndarray, last: np.ndarray) -> np.ndarray:
  """Pixel-wise max of the last two emulated frames (Mnih et al. 2015 flicker removal)."""
  return np.maximum(previous, last)


@functools.lru_cache(maxsize=None)
def area_weights(in_size: int, out_size: int) -> np.ndarray:
  """[out_size, in_size] matrix W with W @ x = area-average resampling of x (INTER_AREA)."""
  scale = in_size / out_size
  weights = np.zeros((out_size, in_size), np.float64)
  for i in range(out_size):
    low, high = i * scale, (i + 1) * scale
    for j in range(int(np.floor(low)), min(int(np.ceil(high)), in_size)):
      weights[i, j] = min(high, j + 1) - max(low, j)
  weights /= scale
  return weights.astype(np.float32)


def resize_area(frame: np.ndarray, height: int, width: int) -> np.ndarray:
  """Area-resizes a [H, W] uint8 frame to [height, width] uint8 (OpenCV INTER_AREA semantics).

  The area weights repeat every H / gcd(H, height) rows (210 → 84: 2 output rows per 5 input rows; 160 → 84:
  21 columns per 40), so each axis is resampled block by block with the small weight matrix of one block:
  ~350k multiply-adds against ~3.9M for the two full [84, 210] and [160, 84] matrices (~35 µs against ~100 µs
  per frame on one core)."""
  in_height, in_width = frame.shape
  row_blocks, column_blocks = math.gcd(in_height, height), math.gcd(in_width, width)
  rows = area_weights(in_height // row_blocks, height // row_blocks)
  columns = area_weights(in_width // column_blocks, width // column_blocks)
  resized = rows @ frame.astype(np.float32).reshape(row_blocks, in_height // row_blocks, in_width)
  resized = resized.reshape(height, column_blocks, in_width // column_blocks) @ columns.T
  return np.clip(np.rint(resized.reshape(height, width)), 0, 255).astype(np.uint8)


class AtariEnvironment(StoredSpecs, dm_env.Environment):
  """One Atari game as a `dm_env.Environment` with the Atari-100k protocol (module docstring)."""

  def __init__(self, game: str, seed: int = 0, config: AtariConfig = AtariConfig()):
    import ale_py  # pylint: disable=g-import-not-at-top
    import ale_py.roms  # pylint: disable=g-import-not-at-top

    self.game = game
    self.config = config
    self._life_loss_is_terminal = config.life_loss_is_terminal
    noop_seed, ale_seed = np.random.SeedSequence(seed).generate_state(2)
    self._rng = np.random.default_rng(int(noop_seed))
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    self.ale = ale_py.ALEInterface()
    self.ale.setInt("random_seed", int(ale_seed) % (2**31 - 1))
    self.ale.setFloat("repeat_action_probability", float(config.sticky_actions))
    self.ale.setInt("frame_skip", 1)
    self.ale.loadROM(str(ale_py.roms.get_rom_path(rom_id(game))))
    self.action_set = (self.ale.getLegalActionSet() if config.full_action_space
                       else self.ale.getMinimalActionSet())
    self._noop = ale_py.Action.NOOP
    height, width = self.ale.getScreenDims()
    self._screens = np.zeros((2, height, width), np.uint8)  # Last two emulated frames.
    self._slot = 0  # Index in `_screens` of the latest frame.
    self._frames: collections.deque = collections.deque(maxlen=config.frame_stack)
    self._observation_spec = specs.BoundedArray(
        shape=(config.screen_size, config.screen_size, config.frame_stack), dtype=np.uint8,
        minimum=0, maximum=255, name="pixels")
    self._action_spec = specs.DiscreteArray(
        num_values=len(self.action_set), dtype=np.int32, name="action")
    self._start_new_game = True
    self._needs_reset = True
    self.last_game_over = False
    self.game_return = 0.0
    self.game_steps = 0
    self.noops_taken = 0
    self.lives = 0

  # Frames.
  def _grab(self) -> None:
    """Stores the current screen over the older of the two kept frames."""
    self._slot ^= 1
    self.ale.getScreenGrayscale(self._screens[self._slot])

  def _frame(self) -> np.ndarray:
    if self.config.frame_skip > 1:
      pooled = max_pool_frames(self._screens[0], self._screens[1])
    else:  # No frame is skipped, so there is no flicker to pool over.
      pooled = self._screens[self._slot]
    size = self.config.screen_size
    return resize_area(pooled, size, size)

  def _observation(self) -> np.ndarray:
    return np.stack(self._frames, axis=-1)

  def _restart_stack(self) -> None:
    size, stack = self.config.screen_size, self.config.frame_stack
    self._frames.clear()
    for _ in range(stack - 1):
      self._frames.append(np.zeros((size, size), np.uint8))
    self._frames.append(self._frame())

  # dm_env API.
  def reset(self) -> dm_env.TimeStep:
    if self._start_new_game:
      self.ale.reset_game()
      self.noops_taken = 0
      if self.config.noop_max > 0:
        self.noops_taken = int(self._rng.integers(1, self.config.noop_max + 1))
        for _ in range(self.noops_taken):
          self.ale.act(self._noop)
          if self.ale.game_over():
            self.ale.reset_game()
      self.game_return = 0.0
      self.game_steps = 0
      self._grab()
      self._screens[self._slot ^ 1] = self._screens[self._slot]
    else:
      self.noops_taken = 0  # Continue the same game after a life loss.
    self.lives = self.ale.lives()
    self.last_game_over = False
    self._start_new_game = True  # A reset() that does not follow a life-loss LAST starts over.
    self._needs_reset = False
    self._restart_stack()
    return dm_env.TimeStep(dm_env.StepType.FIRST, None, None, self._observation())

  def step(self, action) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    ale_action = self.action_set[int(action)]
    reward = 0.0
    game_over = life_lost = False
    for _ in range(self.config.frame_skip):
      reward += self.ale.act(ale_action)
      self._grab()
      game_over = self.ale.game_over()
      lives = self.ale.lives()
      life_lost = lives < self.lives
      self.lives = lives
      if game_over or (life_lost and self._life_loss_is_terminal):
        break
    self._frames.append(self._frame())
    self.game_steps += 1
    self.game_return += reward
    observation = self._observation()
    reward = np.float32(reward)
    if game_over:
      return self._last(reward, observation, discount=0.0, game_ended=True)
    if life_lost and self._life_loss_is_terminal:
      return self._last(reward, observation, discount=0.0, game_ended=False)
    if self.game_steps >= self.config.max_episode_steps:
      return self._last(reward, observation, discount=1.0, game_ended=True)
    return dm_env.TimeStep(dm_env.StepType.MID, reward, np.float32(1.0), observation)

  def _last(self, reward, observation, discount: float, game_ended: bool) -> dm_env.TimeStep:
    self._needs_reset = True
    self._start_new_game = game_ended
    self.last_game_over = game_ended
    return dm_env.TimeStep(dm_env.StepType.LAST, reward, np.float32(discount), observation)


def make_atari(game: str, seed: int = 0, **options) -> dm_env.Environment:
  """`atari:<Game>` with `AtariConfig` options, e.g. `make_atari("Pong", training=False)`; a list of games
  with `switch_every` is a game sequence (`atari_sequence.AtariGameSequence`)."""
  switch_every = options.pop("switch_every", None)
  if "," in game or switch_every is not None:
    from repertory.environments.atari_sequence import AtariGameSequence, parse_games
    games = parse_games(game)
    if switch_every is None:
      raise ConfigError(f"atari:{game} lists several games; add ?switch_every=N (environment steps per game)")
    return AtariGameSequence(games, switch_every, seed=seed, config=_atari_config(options))
  rom_id(game)  # Validate before building anything.
  return AtariEnvironment(game, seed=seed, config=_atari_config(options))


def _atari_config(options) -> AtariConfig:
  valid = [f.name for f in dataclasses.fields(AtariConfig)] + ["switch_every"]
  unknown = sorted(set(options) - set(valid))
  if unknown:
    raise ConfigError(f"unknown atari option(s) {unknown}; valid options: {valid}")
  return AtariConfig(**options)
