"""PPR auxiliary policy-matching loss (Stooke et al. 2020, "Perception-Prediction-Reaction
Agents for Deep RL", arXiv 2006.15223).

The PPR agent draws a policy from each of its reaction, perception and prediction cores; "an
auxiliary loss regularizes policies drawn from all three cores against each other" (abstract), so
the behaviour policy (reaction) must be expressible from recent memory (perception) or long-term
memory (prediction) alone. Only the abstract was checked, so the exact form is configurable:

  L_ppr = β_ppr · Σ_{(i, j) ∈ pairs} masked_mean_{[T, B]} D(π_i, π_j),
  D = KL(π_i ‖ π_j) ("forward"), KL(π_j ‖ π_i) ("reverse") or their average ("symmetric"),

with optional stop-gradients on either side of each pair. Every term is a KL, so L_ppr ≥ 0 and
L_ppr = 0 when the logits agree. KLs via `rlax.categorical_kl_divergence`.
"""

import dataclasses
from typing import Dict, Mapping, Optional, Sequence, Tuple

import chex
import jax
import jax.numpy as jnp
import rlax

from repertory.errors import ConfigError
from repertory.losses.vtrace import masked_mean

Array = chex.Array

DIRECTIONS = ("forward", "reverse", "symmetric")
STOP_GRADIENTS = ("none", "first", "second")
# Defaults [check]: the abstract fixes neither β nor the direction. We regularise the reaction
# (behaviour) policy towards the other two cores, KL(reaction ‖ other) like a default-policy KL
# (arXiv 1905.01240, same group), gradients into both sides ("against each other"), and chose
# β_ppr = 0.01 so the term is small next to the V-trace loss. Tune per domain.
PAIRS = (("reaction", "prediction"), ("reaction", "perception"))
DIRECTION = "forward"
BETA = 0.01


@dataclasses.dataclass(frozen=True)
class PPRAuxConfig:
  """Configuration of the PPR auxiliary loss (arXiv 2006.15223)."""
  beta: float = BETA  # β_ppr.
  pairs: Tuple[Tuple[str, str], ...] = PAIRS
  direction: str = DIRECTION  # one of DIRECTIONS.
  stop_gradient: str = "none"  # one of STOP_GRADIENTS: which side of each pair is held fixed.

  def __post_init__(self):
    validate(self.pairs, self.direction, self.stop_gradient)


def validate(pairs: Sequence[Tuple[str, str]], direction: str, stop_gradient: str,
             names: Optional[Sequence[str]] = None) -> None:
  """Raises ConfigError for an unknown direction / stop_gradient, or pairs naming absent cores."""
  if direction not in DIRECTIONS:
    raise ConfigError(f"PPR aux direction {direction!r} is unknown; use one of {DIRECTIONS}.")
  if stop_gradient not in STOP_GRADIENTS:
    raise ConfigError(f"PPR aux stop_gradient {stop_gradient!r} is unknown; "
                      f"use one of {STOP_GRADIENTS}.")
  if not pairs:
    raise ConfigError("PPR aux pairs is empty; give at least one (first, second) core pair.")
  for pair in pairs:
    if len(pair) != 2 or pair[0] == pair[1]:
      raise ConfigError(f"PPR aux pair {pair!r} must name two different cores.")
    if names is not None and any(n not in names for n in pair):
      raise ConfigError(f"PPR aux pair {pair!r} names a core without logits; "
                        f"available: {sorted(names)}.")


def ppr_aux_loss(logits: Mapping[str, Array],
                 mask: Optional[Array] = None,
                 *,
                 pairs: Sequence[Tuple[str, str]] = PAIRS,
                 direction: str = DIRECTION,
                 stop_gradient: str = "none",
                 beta: float = BETA) -> Tuple[Array, Dict[str, Array]]:
  """β_ppr-weighted policy-matching KL between PPR cores (arXiv 2006.15223, aux loss).

  Args:
    logits: core name -> policy logits [T, B, A] (e.g. "reaction", "perception", "prediction").
    mask: [T, B] weights (0 drops a step); masked mean over [T, B].
    pairs, direction, stop_gradient, beta: see `PPRAuxConfig`.

  Returns:
    (scalar loss ≥ 0, metrics with the unweighted KL of each pair).
  """
  validate(pairs, direction, stop_gradient, names=tuple(logits))
  first = logits[pairs[0][0]]
  chex.assert_rank(first, 3)
  chex.assert_equal_shape(list(logits.values()))
  if mask is None:
    mask = jnp.ones(first.shape[:2], first.dtype)
  chex.assert_equal_shape_prefix([first, mask], 2)
  mask = mask.astype(first.dtype)

  total = jnp.zeros((), first.dtype)
  metrics = {}
  for a_name, b_name in pairs:
    a, b = logits[a_name], logits[b_name]
    if stop_gradient == "first":
      a = jax.lax.stop_gradient(a)
    elif stop_gradient == "second":
      b = jax.lax.stop_gradient(b)
    if direction == "forward":
      kl = rlax.categorical_kl_divergence(a, b)
    elif direction == "reverse":
      kl = rlax.categorical_kl_divergence(b, a)
    else:
      kl = 0.5 * (rlax.categorical_kl_divergence(a, b) + rlax.categorical_kl_divergence(b, a))
    kl = jnp.maximum(kl, 0.0)  # exact KL is ≥ 0; clamp float round-off.
    term = masked_mean(kl, mask)
    metrics[f"ppr_kl_{a_name}_{b_name}"] = term
    total = total + term
  loss = beta * total
  metrics["ppr_aux_loss"] = loss
  return loss, metrics
