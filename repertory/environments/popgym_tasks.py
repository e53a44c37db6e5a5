"""`popgym:<Name>` — POPGym memory tasks (Morad et al. 2023, arXiv 2303.01859), e.g.
`RepeatPreviousEasy`, `CountRecallEasy`, `AutoencodeEasy`.

Names are popgym's class names (`popgym.envs.ALL`). Observations are flattened into a float32
vector (one-hot for Discrete / MultiDiscrete parts, see `gym_adapter.space_converter`); actions
are `DiscreteArray` (Discrete) or int32 `BoundedArray` (MultiDiscrete, e.g. Battleship).
popgym's own episode length gives LAST with discount 1 when it truncates, 0 when it terminates.
"""

from __future__ import annotations

from repertory.environments import gym_adapter
from repertory.errors import ConfigError


def _classes() -> dict:
  import popgym.envs  # pylint: disable=g-import-not-at-top  (slow-ish: keep lazy)
  return {cls.__name__: cls for cls in (*popgym.envs.ALL_BASE, *popgym.envs.ALL)}


def available() -> list[str]:
  """POPGym task names accepted by `popgym:<Name>`."""
  return sorted(_classes())


def make_popgym(name: str, seed: int = 0, max_episode_steps: int | None = None,
                **kwargs) -> gym_adapter.GymnasiumEnvironment:
  """`popgym:<Name>`; `kwargs` go to the popgym env constructor.

  Args:
    max_episode_steps: optional extra `TimeLimit` (truncation → LAST, discount 1).
  """
  classes = _classes()
  if name not in classes:
    raise ConfigError(f"unknown popgym task '{name}'; list valid names with "
                      "repertory.environments.available('popgym')")
  try:
    env = classes[name](**kwargs)
  except TypeError as error:
    raise ConfigError(f"popgym:{name} rejected options {sorted(kwargs)}: {error}") from error
  if max_episode_steps is not None:
    from gymnasium.wrappers import TimeLimit  # pylint: disable=g-import-not-at-top
    env = TimeLimit(env, max_episode_steps=int(max_episode_steps))
  return gym_adapter.GymnasiumEnvironment(env, seed=seed)
