"""A gymnasium → `dm_env` adapter.

Episode boundaries become discounts, which is what bootstrapped losses need:
  * `reset()` → FIRST (reward and discount None);
  * `terminated` → LAST with discount 0 (the true end of the MDP);
  * `truncated` only (e.g. `gymnasium.wrappers.TimeLimit`) → LAST with discount 1, so the
    learner bootstraps from the last observation;
  * otherwise MID with discount 1.
Stepping after a LAST step resets (dm_env semantics). The seed is passed to
`env.reset(seed=seed)` on the first reset only, so later episodes continue the seeded stream.

Observation conversion (`space_converter`):
  * top-level `Box`: kept in shape; float boxes become float32, integer boxes (uint8 images)
    keep their dtype;
  * `Discrete` → one-hot float32; `MultiDiscrete` → concatenated one-hots; `MultiBinary` →
    float32 bits; `Tuple`/`Dict` → concatenation of their flattened parts (float32 vector).
Actions: `Discrete` → `DiscreteArray` (the env's `start` offset is added back);
`Box` → float32 `BoundedArray`; `MultiDiscrete` → int32 `BoundedArray` in [0, nvec - 1].
"""

from __future__ import annotations

from typing import Any, Callable

import dm_env
import numpy as np
from dm_env import specs

from repertory.environments.dm_env_wrappers import StoredSpecs
from repertory.errors import ConfigError


def _flat_size_and_fn(space) -> tuple[int, Callable[[Any], np.ndarray]]:
  """A flattening of `space` into a float32 vector: (size, fn(observation) -> vector)."""
  from gymnasium import spaces  # pylint: disable=g-import-not-at-top

  if isinstance(space, spaces.Box):
    size = int(np.prod(space.shape))
    return size, lambda x: np.asarray(x, dtype=np.float32).reshape(size)
  if isinstance(space, spaces.Discrete):
    n, start = int(space.n), int(space.start)

    def one_hot(x):
      out = np.zeros(n, np.float32)
      out[int(x) - start] = 1.0
      return out

    return n, one_hot
  if isinstance(space, spaces.MultiDiscrete):
    nvec = np.asarray(space.nvec).reshape(-1).astype(np.int64)
    start = np.asarray(getattr(space, "start", np.zeros_like(space.nvec))).reshape(-1)
    offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    size = int(nvec.sum())

    def multi_one_hot(x):
      out = np.zeros(size, np.float32)
      out[offsets + (np.asarray(x).reshape(-1) - start)] = 1.0
      return out

    return size, multi_one_hot
  if isinstance(space, spaces.MultiBinary):
    size = int(np.prod(space.shape))
    return size, lambda x: np.asarray(x, dtype=np.float32).reshape(size)
  if isinstance(space, (spaces.Tuple, spaces.Dict)):
    if isinstance(space, spaces.Dict):
      keys = list(space.spaces.keys())
      parts = [_flat_size_and_fn(space.spaces[k]) for k in keys]
      getter = lambda x: [x[k] for k in keys]
    else:
      parts = [_flat_size_and_fn(s) for s in space.spaces]
      getter = list
    size = sum(p[0] for p in parts)
    fns = [p[1] for p in parts]

    def concat(x):
      return np.concatenate([fn(v) for fn, v in zip(fns, getter(x))]).astype(np.float32)

    return size, concat
  raise ConfigError(
      f"gym observation space {space} is not supported; use Box, Discrete, MultiDiscrete, "
      "MultiBinary, Tuple or Dict, or wrap the env to produce one of them")


def space_converter(space, name: str = "observation") -> tuple[specs.Array, Callable]:
  """Returns (dm_env spec, fn(gym observation) -> numpy observation) for a gymnasium space."""
  from gymnasium import spaces  # pylint: disable=g-import-not-at-top

  if isinstance(space, spaces.Box):
    if np.issubdtype(space.dtype, np.floating):
      dtype = np.dtype(np.float32)
    else:
      dtype = np.dtype(space.dtype)
    low, high = np.asarray(space.low).astype(dtype), np.asarray(space.high).astype(dtype)
    spec = specs.BoundedArray(shape=space.shape, dtype=dtype, minimum=low, maximum=high, name=name)
    return spec, lambda x: np.asarray(x, dtype=dtype)
  size, fn = _flat_size_and_fn(space)
  return specs.Array(shape=(size,), dtype=np.float32, name=name), fn


def action_converter(space) -> tuple[specs.Array, Callable]:
  """Returns (dm_env action spec, fn(dm_env action) -> gym action) for a gymnasium space."""
  from gymnasium import spaces  # pylint: disable=g-import-not-at-top

  if isinstance(space, spaces.Discrete):
    start = int(space.start)
    return (specs.DiscreteArray(num_values=int(space.n), dtype=np.int32, name="action"),
            lambda a: int(a) + start)
  if isinstance(space, spaces.Box):
    spec = specs.BoundedArray(
        shape=space.shape, dtype=np.float32, minimum=np.asarray(space.low, np.float32),
        maximum=np.asarray(space.high, np.float32), name="action")
    return spec, lambda a: np.asarray(a, dtype=space.dtype).reshape(space.shape)
  if isinstance(space, spaces.MultiDiscrete):
    nvec = np.asarray(space.nvec)
    start = np.asarray(getattr(space, "start", np.zeros_like(nvec)))
    spec = specs.BoundedArray(shape=nvec.shape, dtype=np.int32, minimum=np.zeros_like(nvec),
                              maximum=nvec - 1, name="action")
    return spec, lambda a: (np.asarray(a, np.int64).reshape(nvec.shape) + start)
  raise ConfigError(
      f"gym action space {space} is not supported; use Discrete, Box or MultiDiscrete")


class GymnasiumEnvironment(StoredSpecs, dm_env.Environment):
  """Wraps a `gymnasium.Env` as a `dm_env.Environment` (see the module docstring).

  Attributes:
    gym_env: the wrapped gymnasium env.
    last_info: the `info` dict of the latest gymnasium reset/step.
  """

  def __init__(self, gym_env, seed: int | None = 0):
    self.gym_env = gym_env
    self._seed = seed
    self._seeded = False
    self._needs_reset = True
    self._observation_spec, self._convert_observation = space_converter(
        gym_env.observation_space)
    self._action_spec, self._convert_action = action_converter(gym_env.action_space)
    self.last_info: dict = {}

  def reset(self) -> dm_env.TimeStep:
    if not self._seeded:
      observation, info = self.gym_env.reset(seed=self._seed)
      self._seeded = True
    else:
      observation, info = self.gym_env.reset()
    self.last_info = info
    self._needs_reset = False
    return dm_env.TimeStep(dm_env.StepType.FIRST, None, None,
                           self._convert_observation(observation))

  def step(self, action) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    observation, reward, terminated, truncated, info = self.gym_env.step(
        self._convert_action(action))
    self.last_info = info
    observation = self._convert_observation(observation)
    reward = np.float32(reward)
    if terminated:
      self._needs_reset = True
      return dm_env.TimeStep(dm_env.StepType.LAST, reward, np.float32(0.0), observation)
    if truncated:
      self._needs_reset = True
      return dm_env.TimeStep(dm_env.StepType.LAST, reward, np.float32(1.0), observation)
    return dm_env.TimeStep(dm_env.StepType.MID, reward, np.float32(1.0), observation)

  def close(self):
    self.gym_env.close()


def _list_hint(prefix: str) -> str:
  return f"list valid ones with repertory.environments.available('{prefix}')"


def make_gym(env_id: str, seed: int = 0, max_episode_steps: int | None = None,
             **kwargs) -> GymnasiumEnvironment:
  """`gym:<id>`: `gymnasium.make(env_id, **kwargs)` wrapped as a dm_env.

  Args:
    env_id: a registered gymnasium id, e.g. `CartPole-v1`.
    seed: passed to the first `reset(seed=...)`.
    max_episode_steps: overrides the registered `TimeLimit` (truncation → LAST, discount 1).
    **kwargs: passed to `gymnasium.make` (env constructor arguments).
  """
  import importlib  # pylint: disable=g-import-not-at-top
  import gymnasium  # pylint: disable=g-import-not-at-top

  if ":" in env_id:  # gymnasium's "module:Id" form: import the module that registers Id.
    module, env_id = env_id.split(":", 1)
    try:
      importlib.import_module(module)
    except ImportError as error:
      raise ConfigError(f"gym: cannot import module '{module}' ({error}); install it or drop "
                        "the 'module:' part of the id") from error
  elif env_id.startswith("ALE/"):
    import ale_py  # pylint: disable=g-import-not-at-top
    gymnasium.register_envs(ale_py)
  if env_id not in gymnasium.registry:
    raise ConfigError(f"unknown gymnasium id '{env_id}'; {_list_hint('gym')}")
  make_kwargs = dict(kwargs)
  if max_episode_steps is not None:
    make_kwargs["max_episode_steps"] = int(max_episode_steps)
  try:
    env = gymnasium.make(env_id, **make_kwargs)
  except TypeError as error:
    raise ConfigError(f"gym:{env_id} rejected options {sorted(kwargs)}: {error}") from error
  return GymnasiumEnvironment(env, seed=seed)


def available() -> list[str]:
  """Registered gymnasium ids (ids registered by other installed packages included)."""
  import gymnasium  # pylint: disable=g-import-not-at-top
  return sorted(gymnasium.registry.keys())
