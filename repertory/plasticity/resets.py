"""Resets on a schedule: shrink-and-perturb (Ash & Adams 2020, "On Warm-Starting Neural Network Training",
arXiv 1910.08475, §4).

Every `period` learner updates each parameter is shrunk towards zero and perturbed by a fresh
initialisation of the same network:

    θ ← λ·θ + σ·θ_fresh,     θ_fresh ~ the network's initialiser, drawn anew at every reset.

Ash & Adams sweep λ and σ rather than fix one pair; λ = 0.8, σ = 0.01 here are this platform's choice (most
of each weight kept, a small fresh component), not a paper's default: sweep them for a new task.
"""

from typing import Any, Callable, Optional, Tuple

import jax

from repertory.errors import ConfigError

SHRINK = 0.8
PERTURB = 0.01


def check_shrink_perturb(period: int, shrink: float, perturb: float) -> None:
  if period < 0:
    raise ConfigError(f"shrink_perturb_period={period} must be >= 0 (learner updates between resets; 0: never)")
  if not 0.0 < shrink <= 1.0:
    raise ConfigError(f"shrink_factor={shrink} must be in (0, 1] (the fraction of each weight kept; default {SHRINK})")
  if not perturb >= 0.0:
    raise ConfigError(f"perturb_scale={perturb} must be >= 0 (the fresh initialisation's weight; default {PERTURB})")


def shrink_and_perturb(params: Any, fresh: Any, shrink: float = SHRINK, perturb: float = PERTURB) -> Any:
  """λ·θ + σ·θ_fresh, leaf by leaf (`fresh` shaped like `params`)."""
  return jax.tree.map(lambda p, f: shrink * p + perturb * f, params, fresh)


# A scheduled reset: (params, key, forward, inputs) → (params, recycled), with forward(params, *inputs) the
# network's outputs on a batch of replay (what ReDo scores units on; shrink-and-perturb does not look) and
# recycled a tree like params of booleans, the entries whose optimiser moments to zero, or None to keep them.
Reset = Callable[[Any, jax.Array, Callable[..., Any], Tuple[Any, ...]], Tuple[Any, Any]]


class ResetSchedule:
  """The host side of a scheduled reset: due on the first learner call of every `period` updates; after a
  restore (`forget`), not again within the period the restored step count is in."""

  def __init__(self, period: int):
    self.period = period
    self._last: Optional[int] = 0

  def due(self, steps: int) -> bool:
    """Whether to reset now, before the update at `steps`; a True answer counts as the reset done."""
    if not self.period:
      return False
    if self._last is None:
      self._last = steps
    if steps // self.period > self._last // self.period:
      self._last = steps
      return True
    return False

  def forget(self) -> None:
    self._last = None


def make_shrink_perturb(initialise: Callable[[jax.Array], Any], shrink: float = SHRINK,
                        perturb: float = PERTURB) -> Reset:
  """The shrink-and-perturb `Reset`, with `initialise(key)` the network's fresh parameters."""
  return lambda params, key, forward, inputs: (shrink_and_perturb(params, initialise(key), shrink, perturb), None)


def make_redo(initialise: Callable[[jax.Array], Any], threshold: float,
              reads_inputs: Callable[[str], bool] = lambda layer: False, reset_moments: bool = True,
              recycles: Callable[[str], bool] = lambda layer: True) -> Reset:
  """The ReDo `Reset` (`repertory.plasticity.redo`): τ-dormant units recycled from a fresh initialisation;
  `reads_inputs(layer)` names the layers fed network inputs rather than activations, `recycles(layer)` those it
  may touch (`redo.redo_reset`); with `reset_moments` the
  recycled entries' optimiser moments are zeroed too."""
  from repertory.plasticity.redo import redo_reset

  def reset(params, key, forward, inputs):
    new, _, recycled = redo_reset(forward, params, initialise(key), inputs, threshold, reads_inputs, recycles)
    return new, (recycled if reset_moments else None)

  return reset


def apply_reset(reset: Reset, optimizer: Any, params: Any, opt_state: Any, key: jax.Array,
                forward: Callable[..., Any], inputs: Tuple[Any, ...]) -> Tuple[Any, Any]:
  """(params, opt_state) after `reset`, the optimiser moments of what it recycled zeroed."""
  params, recycled = reset(params, key, forward, inputs)
  if recycled is not None:
    from repertory.plasticity.redo import reset_moments
    opt_state = reset_moments(optimizer, opt_state, recycled)
  return params, opt_state
