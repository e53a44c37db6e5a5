"""Hyperbolic (Poincaré-ball) output layers and S-RYM.

Cetin, Chamberlain, Bronstein & Hunt, "Hyperbolic Deep Reinforcement Learning", ICLR 2023,
arXiv 2210.01542 (Sec. 3-4: S-RYM = spectrally-regularised hyperbolic mappings), reference code
twitter-research/hyperbolic-rl (`utils_hyp.py` PoincarePlaneDistance / ClipNorm,
`custom_networks_hyp.py`, `cfgs/agent/onpolicy/hyperbolic/ppo.yaml`). Hyperbolic MLR from Ganea,
Bécigneul & Hofmann, "Hyperbolic Neural Networks", NeurIPS 2018, arXiv 1805.09112 (eqs. 4, 13, 22-25).
Independent JAX/Haiku implementation; curvature −c with c = 1 by default.

Pipeline of `SRYMHead` (order as in the authors' code, ppo.yaml):
  flat features -> spectrally-normalised Linear layers (ReLU between hidden layers, none after the
  last, `pre_hyperbolic_relu: false`) -> per-ball L2 clip at 60 (`max_euclidean_norm: 60 # before
  rescaling`, `ClipNorm`) -> × 1/√32 (`rescale_euclidean_norms_gain: 1.0`, divided by √dims per ball)
  -> exp₀ and projection into the ball -> `PoincareMLR` (balls of 32 dims, logits summed over balls,
  × 0.5 = `effective_softmax_rescale: 0.5`).

Spectral normalisation uses `hk.SpectralNorm`, which keeps its power-iteration vector in Haiku
*state*: build the network with `hk.transform_with_state`, thread `state` through `apply`, and pass
`is_training=True` only in the learner update (the power-iteration estimate is stored only then;
acting and target evaluation use `is_training=False` and leave the state unchanged).
"""

import dataclasses
import math
from typing import Optional, Sequence

import haiku as hk
import jax
import jax.numpy as jnp

from repertory.errors import ConfigError
from repertory.networks.alix import conv2d_valid

# Defaults and their sources.
CURVATURE = 1.0  # Poincaré ball c = 1 (arXiv 2210.01542 Sec. 4; geoopt.PoincareBall(c=1.0)).
BALL_DIM = 32  # ppo.yaml dimensions_per_space: 32.
MAX_EUCLIDEAN_NORM = 60.0  # ppo.yaml max_euclidean_norm: 60 (applied before the 1/√dims rescaling).
RESCALE_GAIN = 1.0  # ppo.yaml rescale_euclidean_norms_gain: 1.0 -> features × 1/√dims_per_ball.
LOGIT_SCALE = 0.5  # ppo.yaml effective_softmax_rescale: 0.5 (with rescale_normal_params: true).
HIDDEN_SIZES = (32,)  # ppo.yaml hidden_units: 32 (the SN layer before the hyperbolic one).
# geoopt's projection margin: points kept at norm <= (1 − eps)/√c, eps = 4e-3 (float32), 1e-5 (float64).
_BALL_EPS = {jnp.dtype(jnp.float32): 4e-3, jnp.dtype(jnp.float64): 1e-5}
_MIN_NORM = 1e-15


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
  norm = jnp.maximum(safe_norm(x, keepdims=True), _MIN_NORM)
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
  return num / jnp.maximum(den, _MIN_NORM)


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
  w_norm = jnp.maximum(safe_norm(normals), _MIN_NORM)
  one_minus_p2 = jnp.maximum(1.0 - c * p2, _MIN_NORM)
  one_minus_x2 = jnp.maximum(1.0 - c * x2, _MIN_NORM)
  numerator = xw * one_minus_p2 - pw * (1.0 - 2.0 * c * xp + c * x2)
  arg = 2.0 * sqrt_c * numerator / (one_minus_p2 * one_minus_x2 * w_norm)
  return 2.0 * w_norm / sqrt_c * jnp.arcsinh(arg)


def _num_balls(dim: int, ball_dim: Optional[int]) -> int:
  if ball_dim is None or dim % ball_dim != 0:
    return 1
  return dim // ball_dim


def clip_norm_per_ball(x: jax.Array, max_norm: float, ball_dim: Optional[int]) -> jax.Array:
  """Scales each ball's slice of x to L2 norm <= max_norm (authors' `ClipNorm`, per space)."""
  dim = x.shape[-1]
  balls = _num_balls(dim, ball_dim)
  xs = x.reshape(x.shape[:-1] + (balls, dim // balls))
  norm = jnp.maximum(safe_norm(xs, keepdims=True), _MIN_NORM)
  xs = xs * jnp.minimum(max_norm / norm, 1.0)
  return xs.reshape(x.shape)


# ---------------------------------------------------------------------------------------------------
# Modules.
# ---------------------------------------------------------------------------------------------------


class PoincareMLR(hk.Module):
  """Hyperbolic multinomial logistic regression (Ganea et al. 2018 eq. 25; S-RYM's final layer).

  Input: points already *in* the ball, [..., D] (use `expmap0` first, or `SRYMHead`). If D is a
  multiple of `ball_dim` the features are split into D/ball_dim independent Poincaré balls of
  `ball_dim` dims and the K per-ball logits are summed (authors' `dimensions_per_space: 32`);
  otherwise (or `ball_dim=None`) the whole vector is one ball of D dims. Output: `logit_scale` ×
  Σ_balls logit, [..., num_outputs], with logit_scale = 0.5 (`effective_softmax_rescale`).

  Parameters: `normals` w [K, balls, d] ~ N(0, 1/D) (authors' `reset_parameters`, std 1/√in_features)
  and `offsets_tangent` v [K, balls, d] = 0. The offsets are p = project(exp₀(v)): a tangent-space
  reparameterisation optimised with the agent's ordinary (Euclidean) optimiser, instead of the
  authors' geoopt RiemannianAdam on p itself; at init both give p = 0.
  """

  def __init__(self, num_outputs: int, ball_dim: Optional[int] = BALL_DIM, c: float = CURVATURE,
               logit_scale: float = LOGIT_SCALE, normal_init_std: Optional[float] = None,
               name: str = "poincare_mlr"):
    super().__init__(name=name)
    if num_outputs < 1:
      raise ConfigError(f"PoincareMLR num_outputs={num_outputs}; use a positive number of logits.")
    self._num_outputs = num_outputs
    self._ball_dim = ball_dim
    self._c = c
    self._logit_scale = logit_scale
    self._normal_init_std = normal_init_std

  def __call__(self, points: jax.Array) -> jax.Array:
    dim = points.shape[-1]
    balls = _num_balls(dim, self._ball_dim)
    d = dim // balls
    std = self._normal_init_std if self._normal_init_std is not None else 1.0 / math.sqrt(dim)
    normals = hk.get_parameter("normals", (self._num_outputs, balls, d), points.dtype,
                               init=hk.initializers.RandomNormal(std))
    offsets_tangent = hk.get_parameter("offsets_tangent", (self._num_outputs, balls, d), points.dtype,
                                       init=jnp.zeros)
    offsets = expmap0(offsets_tangent, self._c)
    x = points.reshape(points.shape[:-1] + (balls, d))
    logits = poincare_mlr_logits(x, normals, offsets, self._c)  # [..., K, balls]
    return self._logit_scale * jnp.sum(logits, axis=-1)


class SpectralNormLinear(hk.Module):
  """Linear layer whose weight is divided by its top singular value (`hk.SpectralNorm`, 1 step).

  Power-iteration state is updated only when `is_training` (Miyato et al. 2018, arXiv 1802.05957).
  """

  def __init__(self, output_size: int, n_power_iterations: int = 1, name: str = "sn_linear"):
    super().__init__(name=name)
    self._output_size = output_size
    self._n_steps = n_power_iterations

  def __call__(self, x: jax.Array, is_training: bool) -> jax.Array:
    input_size = x.shape[-1]
    stddev = 1.0 / math.sqrt(input_size)
    w = hk.get_parameter("w", (input_size, self._output_size), x.dtype,
                         init=hk.initializers.TruncatedNormal(stddev))
    b = hk.get_parameter("b", (self._output_size,), x.dtype, init=jnp.zeros)
    w = _spectral_normalise(w, self._n_steps, is_training)
    return x @ w + b


class SpectralNormConv2D(hk.Module):
  """NHWC 2-D convolution (VALID padding) with a spectrally-normalised kernel.

  The kernel [kh, kw, in, out] is normalised as the matrix [kh·kw·in, out] (`hk.SpectralNorm`;
  the same matrix, transposed, as PyTorch's `spectral_norm` used by the authors).
  """

  def __init__(self, output_channels: int, kernel_size: int, stride: int, n_power_iterations: int = 1,
               name: str = "sn_conv2d"):
    super().__init__(name=name)
    self._channels = output_channels
    self._kernel = kernel_size
    self._stride = stride
    self._n_steps = n_power_iterations

  def __call__(self, x: jax.Array, is_training: bool) -> jax.Array:
    in_channels = x.shape[-1]
    fan_in = self._kernel * self._kernel * in_channels
    w = hk.get_parameter("w", (self._kernel, self._kernel, in_channels, self._channels), x.dtype,
                         init=hk.initializers.TruncatedNormal(1.0 / math.sqrt(fan_in)))
    b = hk.get_parameter("b", (self._channels,), x.dtype, init=jnp.zeros)
    w = _spectral_normalise(w, self._n_steps, is_training)
    return conv2d_valid(x, w, self._stride) + b


def _spectral_normalise(w: jax.Array, n_steps: int, is_training: bool) -> jax.Array:
  sn = hk.SpectralNorm(n_steps=n_steps, name="spectral_norm")
  w = sn(w, update_stats=is_training)
  _ = sn.sigma  # Creates the `sigma` state even when initialised with is_training=False.
  return w


@dataclasses.dataclass(frozen=True)
class SRYMConfig:
  """S-RYM head settings (defaults: twitter-research/hyperbolic-rl ppo.yaml, arXiv 2210.01542).

  Attributes:
    hidden_sizes: spectrally-normalised Linear layers before the hyperbolic layer; the last one sets
      the hyperbolic dimension (ppo.yaml `hidden_units: 32`; ReLU between them, none after the last).
    ball_dim: dims per Poincaré ball (ppo.yaml `dimensions_per_space: 32`).
    max_euclidean_norm: per-ball L2 clip applied before rescaling (ppo.yaml: 60).
    rescale_gain: features × gain/√ball_dim before exp₀ (ppo.yaml: 1.0).
    logit_scale: final × 0.5 (ppo.yaml `effective_softmax_rescale: 0.5`).
    curvature: c = 1.
    n_power_iterations: power-iteration steps per call (PyTorch `spectral_norm` default: 1).
  """
  hidden_sizes: Sequence[int] = HIDDEN_SIZES
  ball_dim: Optional[int] = BALL_DIM
  max_euclidean_norm: float = MAX_EUCLIDEAN_NORM
  rescale_gain: float = RESCALE_GAIN
  logit_scale: float = LOGIT_SCALE
  curvature: float = CURVATURE
  n_power_iterations: int = 1

  def __post_init__(self):
    if self.curvature <= 0:
      raise ConfigError(f"SRYMConfig.curvature={self.curvature}; the Poincaré ball needs c > 0 (S-RYM: 1).")
    if self.ball_dim is not None and self.ball_dim < 1:
      raise ConfigError(f"SRYMConfig.ball_dim={self.ball_dim}; use a positive size or None (S-RYM: 32).")


class SRYMHead(hk.Module):
  """S-RYM output head: flat Euclidean features -> `num_outputs` hyperbolic-MLR logits.

  (arXiv 2210.01542 Sec. 4.) features -> SN Linear(hidden_sizes) -> per-ball clip at 60 ->
  × gain/√ball_dim -> exp₀ (projected inside the ball) -> PoincareMLR(num_outputs) × 0.5.
  Use as the final layer of a DER agent for C51 with num_outputs = num_actions × num_atoms and
  reshape. `is_training` controls the spectral-norm state update (use `hk.transform_with_state`).
  For full S-RYM the conv torso must be spectrally normalised too: use `HyperbolicEncoder`.
  """

  def __init__(self, num_outputs: int, config: SRYMConfig = SRYMConfig(), name: str = "srym_head"):
    super().__init__(name=name)
    self._num_outputs = num_outputs
    self._config = config

  def __call__(self, features: jax.Array, is_training: bool) -> jax.Array:
    cfg = self._config
    x = features.astype(jnp.float32)
    sizes = tuple(cfg.hidden_sizes)
    for i, size in enumerate(sizes):
      x = SpectralNormLinear(size, cfg.n_power_iterations, name=f"sn_linear_{i}")(x, is_training)
      if i < len(sizes) - 1:
        x = jax.nn.relu(x)
    dim = x.shape[-1]
    balls = _num_balls(dim, cfg.ball_dim)
    x = clip_norm_per_ball(x, cfg.max_euclidean_norm, cfg.ball_dim)
    x = x * (cfg.rescale_gain / math.sqrt(dim // balls))
    x = expmap0(x.reshape(x.shape[:-1] + (balls, dim // balls)), cfg.curvature).reshape(x.shape)
    return PoincareMLR(self._num_outputs, cfg.ball_dim, cfg.curvature, cfg.logit_scale)(x)


_TORSOS = {
    "der": ((32, 5, 5), (64, 5, 5)),  # van Hasselt et al. 2019, arXiv 1906.05243 App. F.
    "nature": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),  # Mnih et al. 2015.
}


class HyperbolicEncoder(hk.Module):
  """Spectrally-normalised conv torso + `SRYMHead`: uint8 images [B, H, W, C] -> [B, num_outputs].

  Every conv and linear layer before the hyperbolic layer is spectrally normalised (authors'
  `apply_sn_until_instance(..., PoincarePlaneDistance)`, ppo.yaml `pre_hyperbolic_sn: true`).
  Images are divided by 255. `torso`: "der" (32-5x5/5, 64-5x5/5) or "nature" (DQN).
  """

  def __init__(self, num_outputs: int, torso: str = "der", config: SRYMConfig = SRYMConfig(),
               name: str = "hyperbolic_encoder"):
    super().__init__(name=name)
    if torso not in _TORSOS:
      raise ConfigError(f"HyperbolicEncoder torso={torso!r} is unknown; use one of {', '.join(_TORSOS)}.")
    self._num_outputs = num_outputs
    self._torso = torso
    self._config = config

  def __call__(self, images: jax.Array, is_training: bool) -> jax.Array:
    if images.ndim != 4:
      raise ValueError(f"HyperbolicEncoder expects images [B, H, W, C], got shape {images.shape}.")
    x = images.astype(jnp.float32) / 255.0
    for i, (channels, kernel, stride) in enumerate(_TORSOS[self._torso]):
      x = SpectralNormConv2D(channels, kernel, stride, self._config.n_power_iterations,
                             name=f"sn_conv_{i}")(x, is_training)
      x = jax.nn.relu(x)
    x = hk.Flatten()(x)
    return SRYMHead(self._num_outputs, self._config)(x, is_training)
