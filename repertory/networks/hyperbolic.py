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
from repertory.networks.conv import LAYERS, conv2d_valid
from repertory.networks.poincare import MIN_NORM, CURVATURE, expmap0, poincare_mlr_logits, safe_norm

# Defaults and their sources.
BALL_DIM = 32  # ppo.yaml dimensions_per_space: 32.
MAX_EUCLIDEAN_NORM = 60.0  # ppo.yaml max_euclidean_norm: 60 (applied before the 1/√dims rescaling).
RESCALE_GAIN = 1.0  # ppo.yaml rescale_euclidean_norms_gain: 1.0 -> features × 1/√dims_per_ball.
LOGIT_SCALE = 0.5  # ppo.yaml effective_softmax_rescale: 0.5 (with rescale_normal_params: true).
HIDDEN_SIZES = (32,)  # ppo.yaml hidden_units: 32 (the SN layer before the hyperbolic one).
def _num_balls(dim: int, ball_dim: Optional[int]) -> int:
  if ball_dim is None or dim % ball_dim != 0:
    return 1
  return dim // ball_dim


def clip_norm_per_ball(x: jax.Array, max_norm: float, ball_dim: Optional[int]) -> jax.Array:
  """Scales each ball's slice of x to L2 norm <= max_norm (authors' `ClipNorm`, per space)."""
  dim = x.shape[-1]
  balls = _num_balls(dim, ball_dim)
  xs = x.reshape(x.shape[:-1] + (balls, dim // balls))
  norm = jnp.maximum(safe_norm(xs, keepdims=True), MIN_NORM)
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
  For full S-RYM the conv torso must be spectrally normalised too: use `SpectralNormConvEncoder`.
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


class SpectralNormConvEncoder(hk.Module):
  """S-RYM's encoder: a conv stack with every kernel spectrally normalised, uint8 images [B, H, W, C] ->
  flat features (authors' `apply_sn_until_instance(..., PoincarePlaneDistance)`, ppo.yaml
  `pre_hyperbolic_sn: true`). Images are divided by 255. `layers`: a stack of `conv.LAYERS`. Follow it
  with `SRYMHead`, whose linear layers are spectrally normalised too.
  """

  def __init__(self, layers: str = "der", n_power_iterations: int = 1, name: str = "sn_conv_encoder"):
    super().__init__(name=name)
    if layers not in LAYERS:
      raise ConfigError(f"SpectralNormConvEncoder layers={layers!r} is unknown; use one of {', '.join(LAYERS)}.")
    self._layers = layers
    self._n_power_iterations = n_power_iterations

  def __call__(self, images: jax.Array, is_training: bool) -> jax.Array:
    if images.ndim != 4:
      raise ValueError(f"SpectralNormConvEncoder expects images [B, H, W, C], got shape {images.shape}.")
    x = images.astype(jnp.float32) / 255.0
    for i, (channels, kernel, stride) in enumerate(LAYERS[self._layers]):
      x = SpectralNormConv2D(channels, kernel, stride, self._n_power_iterations, name=f"sn_conv_{i}")(x, is_training)
      x = jax.nn.relu(x)
    return hk.Flatten()(x)
