"""Poincaré-ball operations: projection, exponential / logarithmic maps at 0, Möbius addition, and the
hyperbolic multinomial-logistic-regression logits.

Ganea, Bécigneul & Hofmann, "Hyperbolic Neural Networks", NeurIPS 2018, arXiv 1805.09112 (eqs. 4, 13,
22-25), with the numerical margins of geoopt's `PoincareBall` as used by S-RYM (Cetin et al. 2023,
arXiv 2210.01542, reference code twitter-research/hyperbolic-rl). Curvature −c, c = 1 by default.
"""

import math
from typing import Optional

import jax
import jax.numpy as jnp

CURVATURE = 1.0  # Poincaré ball c = 1 (arXiv 2210.01542 Sec. 4; geoopt.PoincareBall(c=1.0)).
# geoopt's projection margin: points kept at norm <= (1 − eps)/√c, eps = 4e-3 (float32), 1e-5 (float64).
_BALL_EPS = {jnp.dtype(jnp.float32): 4e-3, jnp.dtype(jnp.float64): 1e-5}
MIN_NORM = 1e-15


def _ball_eps(dtype) -> float:
  return _BALL_EPS.get(jnp.dtype(dtype), 4e-3)


# ---------------------------------------------------------------------------------------------------
# Poincaré-ball maths (pure functions, last axis = ball coordinates).
# ---------------------------------------------------------------------------------------------------


def safe_norm(x: jax.Array, axis: int = -1, keepdims: bool = False) -> jax.Array:
  """L2 norm with finite gradients everywhere: 0 (not NaN) at x = 0, no overflow for huge x.

  Computed as m·‖x/m‖ with m = stop_gradient(max|x|) (exact, since ‖·‖ is 1-homogeneous), and the
  square root guarded by a double `where`.
  """
  m = jax.lax.stop_gradient(jnp.max(jnp.abs(x), axis=axis, keepdims=True))
  m = jnp.where(m > 0, m, 1.0)
  sq = jnp.sum(jnp.square(x / m), axis=axis, keepdims=True)
  positive = sq > 0
  norm = jnp.where(positive, m * jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
  return norm if keepdims else jnp.squeeze(norm, axis=axis)


def project(x: jax.Array, c: float = CURVATURE, eps: Optional[float] = None) -> jax.Array:
  """Rescales points so that ‖x‖ <= (1 − eps)/√c: strictly inside the ball (geoopt `project`)."""
  eps = _ball_eps(x.dtype) if eps is None else eps
  max_norm = (1.0 - eps) / math.sqrt(c)
  norm = jnp.maximum(safe_norm(x, keepdims=True), MIN_NORM)
  return jnp.where(norm > max_norm, x / norm * max_norm, x)


def _tanh_ratio(r: jax.Array) -> jax.Array:
  """tanh(r)/r with the limit 1 at r = 0 (finite value and gradient)."""
  small = r < 1e-4
  safe_r = jnp.where(small, 1.0, r)
  return jnp.where(small, 1.0 - jnp.square(r) / 3.0, jnp.tanh(safe_r) / safe_r)


def _artanh_ratio(r: jax.Array) -> jax.Array:
  """artanh(r)/r with the limit 1 at r = 0; r is clipped below 1 (geoopt: 1 − 1e-7 in float64)."""
  r = jnp.minimum(r, 1.0 - 1e-7 if r.dtype == jnp.float64 else 1.0 - 1e-6)
  small = r < 1e-4
  safe_r = jnp.where(small, 0.5, r)
  return jnp.where(small, 1.0 + jnp.square(r) / 3.0, jnp.arctanh(safe_r) / safe_r)


def expmap0(v: jax.Array, c: float = CURVATURE, project_output: bool = True) -> jax.Array:
  """Exponential map at the origin, exp₀(v) = tanh(√c‖v‖) v / (√c‖v‖) (arXiv 1805.09112 eq. 13).

  With `project_output` the result is projected to norm <= (1 − 4e-3)/√c, so ‖exp₀(v)‖ < 1/√c even
  when tanh rounds to 1 for huge v (the authors call geoopt `expmap0(..., project=True)`).
  """
  sqrt_c = math.sqrt(c)
  y = _tanh_ratio(sqrt_c * safe_norm(v, keepdims=True)) * v
  return project(y, c) if project_output else y


def logmap0(y: jax.Array, c: float = CURVATURE) -> jax.Array:
  """Logarithmic map at the origin, log₀(y) = artanh(√c‖y‖) y / (√c‖y‖) (arXiv 1805.09112 eq. 13)."""
  sqrt_c = math.sqrt(c)
  return _artanh_ratio(sqrt_c * safe_norm(y, keepdims=True)) * y


def mobius_add(x: jax.Array, y: jax.Array, c: float = CURVATURE) -> jax.Array:
  """Möbius addition x ⊕_c y (arXiv 1805.09112 eq. 4).

  ((1 + 2c⟨x,y⟩ + c‖y‖²) x + (1 − c‖x‖²) y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²).
  """
  xy = jnp.sum(x * y, axis=-1, keepdims=True)
  x2 = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
  y2 = jnp.sum(jnp.square(y), axis=-1, keepdims=True)
  num = (1.0 + 2.0 * c * xy + c * y2) * x + (1.0 - c * x2) * y
  den = 1.0 + 2.0 * c * xy + c * c * x2 * y2
  return num / jnp.maximum(den, MIN_NORM)


def poincare_mlr_logits(x: jax.Array, normals: jax.Array, offsets: jax.Array,
                        c: float = CURVATURE) -> jax.Array:
  """Signed, scaled distances to hyperbolic hyperplanes, per ball (arXiv 1805.09112 eq. 25).

  For a plane with offset p (in the ball) and tangent normal a_p = (1 − c‖p‖²)·w (w lives at the
  origin and is parallel-transported to p, as the authors' `rescale_normal_params: true`; then
  λ_p‖a_p‖ = 2‖w‖):

    logit = λ_p ‖a_p‖ / √c · arsinh( 2√c ⟨−p ⊕ x, a_p⟩ / ((1 − c‖−p ⊕ x‖²) ‖a_p‖) )
          = 2‖w‖/√c · arsinh( 2√c (⟨x,w⟩(1 − c‖p‖²) − ⟨p,w⟩(1 − 2c⟨p,x⟩ + c‖x‖²))
                               / ((1 − c‖p‖²)(1 − c‖x‖²) ‖w‖) ).

  The second line expands the Möbius sum and uses 1 − c‖u ⊕ x‖² = (1 − c‖u‖²)(1 − c‖x‖²)/D (D the
  Möbius denominator, which cancels), so only [B, K, balls] inner products are formed and the
  denominator stays positive. The logit's sign is the side of the plane {x : ⟨−p ⊕ x, w⟩ = 0}.

  Args:
    x: points in the ball, [..., balls, d].
    normals: w, [K, balls, d].
    offsets: p (inside the ball), [K, balls, d].

  Returns:
    [..., K, balls] logits (not summed, not rescaled).
  """
  sqrt_c = math.sqrt(c)
  xw = jnp.einsum("...bd,kbd->...kb", x, normals)
  xp = jnp.einsum("...bd,kbd->...kb", x, offsets)
  x2 = jnp.sum(jnp.square(x), axis=-1)[..., None, :]  # [..., 1, balls]
  pw = jnp.sum(offsets * normals, axis=-1)  # [K, balls]
  p2 = jnp.sum(jnp.square(offsets), axis=-1)
  w_norm = jnp.maximum(safe_norm(normals), MIN_NORM)
  one_minus_p2 = jnp.maximum(1.0 - c * p2, MIN_NORM)
  one_minus_x2 = jnp.maximum(1.0 - c * x2, MIN_NORM)
  numerator = xw * one_minus_p2 - pw * (1.0 - 2.0 * c * xp + c * x2)
  arg = 2.0 * sqrt_c * numerator / (one_minus_p2 * one_minus_x2 * w_norm)
  return 2.0 * w_norm / sqrt_c * jnp.arcsinh(arg)
