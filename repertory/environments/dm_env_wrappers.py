"""Small `dm_env.Environment` wrappers shared by the dm_control and memory-maze factories.

Conventions inside repertory: rewards and discounts are float32 scalars; a FIRST step has
reward and discount None; stepping after a LAST step starts a new episode (dm_env semantics).
"""

from __future__ import annotations

import collections
from typing import Any, Callable

import dm_env
import numpy as np
from dm_env import specs

FLOAT32_REWARD_SPEC = specs.Array(shape=(), dtype=np.float32, name="reward")
FLOAT32_DISCOUNT_SPEC = specs.BoundedArray(
    shape=(), dtype=np.float32, minimum=0.0, maximum=1.0, name="discount")


def float32_timestep(timestep: dm_env.TimeStep) -> dm_env.TimeStep:
  """Returns `timestep` with reward and discount cast to float32 scalars (None kept on FIRST)."""
  if timestep.first():
    return timestep._replace(reward=None, discount=None)
  return timestep._replace(
      reward=np.float32(0.0 if timestep.reward is None else timestep.reward),
      discount=np.float32(1.0 if timestep.discount is None else timestep.discount))


class StoredSpecs:
  """Spec accessors for environments that keep `_observation_spec` and `_action_spec` and emit
  float32 rewards and discounts."""

  def observation_spec(self):
    return self._observation_spec

  def action_spec(self):
    return self._action_spec

  def reward_spec(self):
    return FLOAT32_REWARD_SPEC

  def discount_spec(self):
    return FLOAT32_DISCOUNT_SPEC


class Wrapper(dm_env.Environment):
  """Forwards everything to the wrapped environment; subclasses override what they change."""

  def __init__(self, environment: dm_env.Environment):
    self._environment = environment

  @property
  def environment(self) -> dm_env.Environment:
    return self._environment

  def __getattr__(self, name: str) -> Any:
    if name.startswith("__") or name == "_environment":
      raise AttributeError(name)
    return getattr(self._environment, name)

  def reset(self) -> dm_env.TimeStep:
    return self._environment.reset()

  def step(self, action) -> dm_env.TimeStep:
    return self._environment.step(action)

  def observation_spec(self):
    return self._environment.observation_spec()

  def action_spec(self):
    return self._environment.action_spec()

  def reward_spec(self):
    return self._environment.reward_spec()

  def discount_spec(self):
    return self._environment.discount_spec()

  def close(self):
    return self._environment.close()


class Float32Wrapper(StoredSpecs, Wrapper):
  """Casts rewards and discounts to float32 and converts observations with `observation_fn`.

  Float64 `BoundedArray` action specs are exposed as float32 (agents emit float32); actions are
  cast back to the wrapped spec's dtype before stepping.
  """

  def __init__(self, environment: dm_env.Environment,
               observation_fn: Callable[[Any], Any] | None = None,
               observation_spec: Any = None):
    super().__init__(environment)
    self._observation_fn = observation_fn or (lambda x: x)
    self._observation_spec = (observation_spec if observation_spec is not None
                              else environment.observation_spec())
    inner = environment.action_spec()
    self._inner_action_dtype = getattr(inner, "dtype", None)
    if isinstance(inner, specs.BoundedArray) and not isinstance(inner, specs.DiscreteArray) \
        and np.issubdtype(inner.dtype, np.floating):
      self._action_spec = specs.BoundedArray(
          shape=inner.shape, dtype=np.float32,
          minimum=np.asarray(inner.minimum, np.float32),
          maximum=np.asarray(inner.maximum, np.float32), name=inner.name or "action")
    else:
      self._action_spec = inner

  def _convert(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    timestep = float32_timestep(timestep)
    return timestep._replace(observation=self._observation_fn(timestep.observation))

  def reset(self) -> dm_env.TimeStep:
    return self._convert(self._environment.reset())

  def step(self, action) -> dm_env.TimeStep:
    if self._inner_action_dtype is not None:
      action = np.asarray(action, dtype=self._inner_action_dtype)
    return self._convert(self._environment.step(action))


class ActionRepeat(Wrapper):
  """Repeats each action `num_repeats` times: rewards are summed, discounts multiplied.

  Stops early at a LAST step, which is returned with the accumulated reward and discount.
  """

  def __init__(self, environment: dm_env.Environment, num_repeats: int):
    super().__init__(environment)
    if num_repeats < 1:
      raise ValueError(f"num_repeats must be >= 1, got {num_repeats}")
    self._num_repeats = num_repeats

  def step(self, action) -> dm_env.TimeStep:
    reward = np.float32(0.0)
    discount = np.float32(1.0)
    for _ in range(self._num_repeats):
      timestep = self._environment.step(action)
      if timestep.first():  # Stepping after LAST started a new episode.
        return timestep
      reward = np.float32(reward + timestep.reward)
      discount = np.float32(discount * timestep.discount)
      if timestep.last():
        break
    return timestep._replace(reward=reward, discount=discount)


class FrameStack(Wrapper):
  """Concatenates the last `num_frames` image observations along the channel (last) axis.

  At the start of an episode the stack is filled with copies of the first frame (DrQ,
  arXiv 2004.13649, stacks 3 frames this way).
  """

  def __init__(self, environment: dm_env.Environment, num_frames: int):
    super().__init__(environment)
    if num_frames < 1:
      raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    self._num_frames = num_frames
    self._frames: collections.deque = collections.deque(maxlen=num_frames)
    inner = environment.observation_spec()
    shape = inner.shape[:-1] + (inner.shape[-1] * num_frames,)
    self._observation_spec = specs.BoundedArray(
        shape=shape, dtype=inner.dtype, minimum=0, maximum=255, name=inner.name or "pixels")

  def _stacked(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    if timestep.first():
      self._frames.clear()
      for _ in range(self._num_frames - 1):
        self._frames.append(timestep.observation)
    self._frames.append(timestep.observation)
    return timestep._replace(observation=np.concatenate(list(self._frames), axis=-1))

  def reset(self) -> dm_env.TimeStep:
    return self._stacked(self._environment.reset())

  def step(self, action) -> dm_env.TimeStep:
    return self._stacked(self._environment.step(action))

  def observation_spec(self):
    return self._observation_spec
