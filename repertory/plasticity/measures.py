"""Pure measures of a network's plasticity, each a jit-able function of arrays.

* `srank`: the effective rank srank_δ(Φ) = min{k : Σ_{i≤k} σ_i / Σ_i σ_i ≥ 1 − δ} of a feature matrix
  Φ [B, F] with singular values σ_1 ≥ σ_2 ≥ … (Kumar et al. 2021, arXiv 2010.14498, §3, δ = 0.01).
  Gulcehre et al. 2022 (arXiv 2207.02099) show it can mislead alone: log it beside the plasticity probe.
* `spectrum_summary`: the largest singular value and its share of the spectrum, beside srank.
* `dormant_fraction`: the fraction of τ-dormant units of an activation h [B, ..., H], unit i dormant when
  s_i = E_x|h_i(x)| / ((1/H) Σ_j E_x|h_j(x)|) ≤ τ (Sokar et al. 2023, arXiv 2302.12902, Definition 3.1;
  the expectation runs over the batch and, for convolutions, the spatial positions).
* `module_norms`: the L2 norm of each Haiku module's parameters in any pytree of parameter dicts (the
  per-layer weight, gradient and update norms of the diagnostics).
"""

from typing import Any, Dict

import chex
import jax
import jax.numpy as jnp

SRANK_DELTA = 0.01  # Kumar et al. 2021, §3.
DORMANT_THRESHOLD = 0.025  # τ of Sokar et al. 2023 for value-based agents (§4; τ = 0 flags only dead units).


def srank(features: jax.Array, delta: float = SRANK_DELTA) -> jax.Array:
  """srank_δ of `features` [B, F] (0 for an all-zero matrix)."""
  chex.assert_rank(features, 2)
  singular_values = jnp.linalg.svd(features.astype(jnp.float32), compute_uv=False)
  total = jnp.sum(singular_values)
  cumulative = jnp.cumsum(singular_values) / jnp.where(total > 0, total, 1.0)
  rank = jnp.sum(cumulative < 1.0 - delta) + 1
  return jnp.where(total > 0, rank, 0)


def spectrum_summary(features: jax.Array) -> Dict[str, jax.Array]:
  """{"sv_max": σ_1, "sv_max_share": σ_1 / Σσ_i} of `features` [B, F]."""
  chex.assert_rank(features, 2)
  singular_values = jnp.linalg.svd(features.astype(jnp.float32), compute_uv=False)
  total = jnp.sum(singular_values)
  return {"sv_max": singular_values[0], "sv_max_share": singular_values[0] / jnp.where(total > 0, total, 1.0)}


def unit_scores(activation: jax.Array) -> jax.Array:
  """s_i = E|h_i| / mean_j E|h_j| for the last axis of `activation` [B, ..., H] (all zero when h is)."""
  mean_abs = jnp.mean(jnp.abs(activation.astype(jnp.float32)).reshape(-1, activation.shape[-1]), axis=0)
  layer_mean = jnp.mean(mean_abs)
  return mean_abs / jnp.where(layer_mean > 0, layer_mean, 1.0)


def dormant_fraction(activation: jax.Array, threshold: float = DORMANT_THRESHOLD) -> jax.Array:
  """The fraction of units i of `activation` [B, ..., H] with s_i ≤ τ."""
  return jnp.mean(unit_scores(activation) <= threshold)


def _module_of(path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path[:-1])


def module_norms(tree: Any) -> Dict[str, jax.Array]:
  """Module path (the keys above each parameter, "/~/" shortened to "/") → L2 norm of its parameters."""
  squares: Dict[str, jax.Array] = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    name = _module_of(path).replace("/~/", "/")
    squares[name] = squares.get(name, 0.0) + jnp.sum(jnp.square(leaf.astype(jnp.float32)))
  return {name: jnp.sqrt(total) for name, total in squares.items()}
