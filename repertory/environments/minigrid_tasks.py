"""`minigrid:<id>` — MiniGrid tasks (e.g. `MiniGrid-MemoryS7-v0`) with the partial view image.

Observation: the agent's egocentric 7×7 partial view, uint8 (7, 7, 3) of (object, colour, state)
indices (`minigrid.wrappers.ImgObsWrapper`); actions: `DiscreteArray(7)`. The mission string is
dropped (constant within a Memory task). Episode ends: reaching/failing the goal → LAST with
discount 0; the task's `max_steps` → LAST with discount 1.
"""

from __future__ import annotations

from repertory.environments import gym_adapter
from repertory.errors import ConfigError


def available() -> list[str]:
  """MiniGrid ids registered by the installed minigrid package."""
  import gymnasium  # pylint: disable=g-import-not-at-top
  import minigrid  # pylint: disable=g-import-not-at-top,unused-import
  return sorted(k for k in gymnasium.registry if k.startswith(("MiniGrid-", "BabyAI-")))


def make_minigrid(env_id: str, seed: int = 0, **kwargs) -> gym_adapter.GymnasiumEnvironment:
  """`minigrid:<id>`; `kwargs` go to the MiniGrid env constructor (e.g. `max_steps`)."""
  import gymnasium  # pylint: disable=g-import-not-at-top
  import minigrid  # pylint: disable=g-import-not-at-top,unused-import
  from minigrid.wrappers import ImgObsWrapper  # pylint: disable=g-import-not-at-top

  if env_id not in available():
    raise ConfigError(f"unknown minigrid id '{env_id}'; list valid ids with "
                      "repertory.environments.available('minigrid')")
  try:
    env = gymnasium.make(env_id, **kwargs)
  except TypeError as error:
    raise ConfigError(f"minigrid:{env_id} rejected options {sorted(kwargs)}: {error}") from error
  return gym_adapter.GymnasiumEnvironment(ImgObsWrapper(env), seed=seed)
