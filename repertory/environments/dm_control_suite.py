"""`dmc:<domain>-<task>` — DeepMind Control Suite (Tassa et al. 2018, arXiv 1801.00690).

States (default): the observation dict is concatenated, in the task's key order, into one flat
float32 vector. Pixels (`?pixels=84`, or `pixels=84` as an option): `physics.render(84, 84,
camera_id=0)` uint8 (84, 84, 3) frames, the last `frame_stack` = 3 concatenated on the channel
axis → (84, 84, 9), each action repeated `action_repeat` = 2 times (DrQ, arXiv 2004.13649,
uses 3 frames; its action repeat is per task — 2 is the PlaNet/DrQ default here). Actions are a
float32 `BoundedArray` (usually [-1, 1]). The suite's time limit (1000 steps) gives LAST with
discount 1.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from dm_env import specs

from repertory.environments import dm_env_wrappers
from repertory.environments import rendering
from repertory.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DMCConfig:
  """Options of `dmc:` tasks."""

  pixels: int = 0  # 0: states; N: N×N RGB pixels.
  camera_id: int = 0
  frame_stack: int = 3  # Pixels only; DrQ (arXiv 2004.13649) stacks 3 frames.
  action_repeat: int | None = None  # None → 2 for pixels (PlaNet/DrQ), 1 for states.

  def __post_init__(self):
    if self.pixels < 0 or self.frame_stack < 1 or (
        self.action_repeat is not None and self.action_repeat < 1):
      raise ConfigError(f"dmc options out of range: {self}; need pixels >= 0, frame_stack >= 1, "
                        "action_repeat >= 1")


def available() -> list[str]:
  """`<domain>-<task>` names of the installed dm_control suite (benchmark and extra tasks)."""
  rendering.prepare_headless_physics()
  from dm_control import suite  # pylint: disable=g-import-not-at-top
  return sorted(f"{domain}-{task}" for domain, task in suite.ALL_TASKS)


def _split(name: str) -> tuple[str, str]:
  domain, sep, task = name.partition("-")
  if not sep or not domain or not task:
    raise ConfigError(f"dmc name '{name}' must be '<domain>-<task>' (e.g. dmc:cartpole-balance); "
                      "list valid ones with repertory.environments.available('dmc')")
  return domain, task


def _flatten_fn(observation_spec):
  keys = list(observation_spec.keys())
  size = sum(int(np.prod(observation_spec[k].shape)) for k in keys)

  def flatten(observation):
    return np.concatenate(
        [np.asarray(observation[k], np.float32).reshape(-1) for k in keys]).astype(np.float32)

  spec = specs.Array(shape=(size,), dtype=np.float32, name="observations")
  return flatten, spec


def make_dmc(name: str, seed: int = 0, **options):
  """`dmc:<domain>-<task>` with `DMCConfig` options; see the module docstring."""
  domain, task = _split(name)
  valid = [f.name for f in dataclasses.fields(DMCConfig)]
  unknown = sorted(set(options) - set(valid))
  if unknown:
    raise ConfigError(f"unknown dmc option(s) {unknown}; valid options: {valid}")
  config = DMCConfig(**options)
  if config.pixels:
    rendering.require_gl_backend(f"dmc:{name} with pixels")
  else:
    rendering.prepare_headless_physics()
  from dm_control import suite  # pylint: disable=g-import-not-at-top

  if (domain, task) not in suite.ALL_TASKS:
    raise ConfigError(f"unknown dm_control task '{domain}-{task}'; list valid ones with "
                      "repertory.environments.available('dmc')")
  env = suite.load(domain, task, task_kwargs={"random": seed})
  repeat = config.action_repeat or (2 if config.pixels else 1)
  if repeat > 1:
    env = dm_env_wrappers.ActionRepeat(env, repeat)
  if not config.pixels:
    flatten, spec = _flatten_fn(env.observation_spec())
    return dm_env_wrappers.Float32Wrapper(env, observation_fn=flatten, observation_spec=spec)
  physics = env.physics
  size, camera_id = config.pixels, config.camera_id

  def render(_):
    return physics.render(size, size, camera_id=camera_id)

  pixel_spec = specs.BoundedArray(shape=(size, size, 3), dtype=np.uint8, minimum=0, maximum=255,
                                  name="pixels")
  env = dm_env_wrappers.Float32Wrapper(env, observation_fn=render, observation_spec=pixel_spec)
  return dm_env_wrappers.FrameStack(env, config.frame_stack)
