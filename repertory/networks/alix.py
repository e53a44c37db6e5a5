"""A-LIX: adaptive local signal mixing for pixel encoders.

Cetin, Ball, Roberts & Celiktutan, "Stabilizing Off-Policy Deep Reinforcement Learning from Pixels",
ICML 2022, arXiv 2207.00986 (Sec. 5, eqs. 5-7), reference code Aladoro/Stabilizing-Off-Policy-RL
(`analysis_layers.py`, `analysis_custom_autograd_functions.py`, `analysis_modules.py`,
`cfgs/algo/ALIX.yaml`). This is an independent JAX/Haiku implementation.

* LIX layer (eq. 5): in training every feature map is replaced by a bilinear sample of its
  replicate-padded self at (i + δ_y, j + δ_x), δ ~ U[−S, S]²; at evaluation it is the identity.
* Adaptive S (eqs. 6-7): S receives, through a custom VJP that is the identity in the forward pass,
  the "gradient" ND_target − ND, where ND is the normalised discontinuity of the (batch-mean) feature
  gradients. Gradient *descent* on S therefore raises S while ND > ND_target and lowers it otherwise
  (same sign as `LearnS.backward` in the authors' code).
* `alix_encoder.ALIXEncoder`: LIX after every conv ReLU (or the last only), one shared S. As in the authors'
  `AllFeatTiedRegularizedEncoder`, only the last LIX layer's output gradients tune S.
* Strided encoders: S is in pixels of the first feature map, and the LIX layer after conv l shifts by
  S · stride₀ / (stride₀ · … · stride_l), i.e. by the same distance in input pixels at every depth.
  For DrQ-v2 (strides 2, 1, 1, 1) every layer shifts by S, as the authors' code; for the DER torso
  (strides 5, 5) the 3×3 last map shifts by S / 5 instead of by up to 2 of its 3 pixels.

Wiring in an agent (params from `hk.transform`, or `hk.transform_with_state`)::

    encoder = ALIXEncoder(ALIXConfig(architecture="drqv2"))
    features = encoder(images, is_training=True)   # critic loss: gradients reach the conv weights and S
    optimizer = alix_optimizer.make_alix_optimizer(optax.adam(1e-4))  # S gets its own Adam(2e-3, b1=0.5) + [0, S_max] clip
    opt_state = optimizer.init(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)  # `params` is REQUIRED (projection)

The paper trains the encoder (and hence S) with the critic loss only; the actor should see
`jax.lax.stop_gradient(features)`. Put global-norm clipping *inside* `default_optimizer`, never around
the multi_transform, so the ND signal for S is not rescaled.
"""

import dataclasses
import functools

import haiku as hk
import jax
import jax.numpy as jnp

from repertory.errors import ConfigError
from repertory.networks.conv import LAYERS

# Defaults and their sources (arXiv 2207.00986 / Aladoro/Stabilizing-Off-Policy-RL cfgs/algo/ALIX.yaml).
ND_TARGET = 0.535  # ALIX.yaml param_grad_fn_args [3, 0.535, 1e-20]; paper Table (A-LIX hyper-parameters).
ND_EPS = 1e-20  # ALIX.yaml param_grad_fn_args: stabiliser of noise²/signal².
ND_KERNEL_SIZE = 3  # ALIX.yaml: 3x3 neighbourhood.
MAX_SHIFT = 2.0  # ALIX.yaml LocalSignalMixing pad: 2 (S_max in pixels).
INITIAL_SHIFT = 0.5  # ALIX.yaml parameter_init: 0.5.

SHIFT_MODULE_NAME = "alix_shift"
SHIFT_PARAM_NAME = "shift"

_ARCHITECTURES = tuple(LAYERS)  # every stack of `conv.LAYERS`


@dataclasses.dataclass(frozen=True)
class ALIXConfig:
  """A-LIX encoder settings.

  Attributes:
    architecture: "der" = data-efficient Rainbow CNN (van Hasselt et al. 2019, arXiv 1906.05243,
      Appendix F: Conv 32 5x5/5, Conv 64 5x5/5, flatten; input /255), "nature" = DQN's convolutions
      (Mnih et al. 2015, Nature, Methods: 32 8x8/4, 64 4x4/2, 64 3x3/1, flatten; input /255, no Linear 512),
      or "drqv2" = DrQ-v2 encoder
      (Yarats et al. 2021, arXiv 2107.09645: 4 convs 32 ch 3x3, first stride 2; input /255 − 0.5;
      orthogonal init with ReLU gain as in the authors' `utils.weight_init`). All use VALID padding.
    max_shift: S_max in pixels (ALIX.yaml `pad: 2`). S is clipped to [0, max_shift].
    initial_shift: S at initialisation in pixels (ALIX.yaml `parameter_init: 0.5`).
    nd_target: ND_target (ALIX.yaml: 0.535).
    nd_eps: ε in noise²/(signal² + ε) (ALIX.yaml: 1e-20).
    per_example_shift: False (default) draws one δ per batch, as the authors' config
      (`fixed_batch: true` -> one shift of shape (1, 1, 1, 2) for the whole batch); True draws one δ
      per batch element.
    learn_from_all_layers: False (default, authors' `AllFeatTiedRegularizedEncoder`): only the last
      LIX layer's output gradients give S its ND signal; True sums the ND signals of all LIX layers.
    lix_after: "every" (default: a LIX layer after every conv ReLU, as the authors' DMC encoder) or "last"
      (after the final conv ReLU only, as the paper's Atari 100k agent, Sec. 5.2).
    trunk_features: 0 (default) returns the flat conv features; n > 0 adds DrQ-v2's trunk, Linear n →
      LayerNorm → tanh (arXiv 2107.09645; the A-LIX paper's Atari "feature dimensionality 50", Table 7).

  Units note: the authors' code stores a normalised p ∈ [0, 1] and draws offsets U[−2.5p, 2.5p] px
  (pad 2, grid_sample with align_corners=False), so their init 0.5 is a ±1.25 px shift. Here S is in
  pixels, δ ~ U[−S, S]² with S ∈ [0, 2] and S₀ = 0.5 as the paper's description; set
  `initial_shift=1.25, max_shift=2.5` to reproduce the code's ranges exactly.
  """
  architecture: str = "drqv2"
  max_shift: float = MAX_SHIFT
  initial_shift: float = INITIAL_SHIFT
  nd_target: float = ND_TARGET
  nd_eps: float = ND_EPS
  per_example_shift: bool = False
  learn_from_all_layers: bool = False
  lix_after: str = "every"
  trunk_features: int = 0

  def __post_init__(self):
    if self.architecture not in _ARCHITECTURES:
      raise ConfigError(f"ALIXConfig.architecture={self.architecture!r} is unknown; use one of "
                        f"{', '.join(_ARCHITECTURES)}.")
    if self.max_shift < 0:
      raise ConfigError(f"ALIXConfig.max_shift={self.max_shift} is negative; use a value >= 0 (paper: 2).")
    if not 0 <= self.initial_shift <= self.max_shift:
      raise ConfigError(f"ALIXConfig.initial_shift={self.initial_shift} is outside [0, max_shift="
                        f"{self.max_shift}]; pick a value inside (paper: 0.5).")
    if self.lix_after not in ("every", "last"):
      raise ConfigError(f"ALIXConfig.lix_after={self.lix_after!r} is unknown; use 'every' or 'last'.")
    if self.trunk_features < 0:
      raise ConfigError(f"ALIXConfig.trunk_features={self.trunk_features} is negative; use 0 (no trunk) or a size.")


# A-LIX as the paper ran it on Atari 100k (arXiv 2207.00986, Sec. 5.2 and Table 7): the 3-conv stack of Table 7,
# one LIX layer after the final conv ReLU, "initial maximum sampling shift S 1.0", "normalized discontinuity
# target 0.75", feature dimensionality 50 (the trunk). The paper's S learning rate, 1e-4, is
# `alix_optimizer.ATARI_SHIFT_LEARNING_RATE`. The paper gives S without units; here it is in pixels.
ATARI_100K = ALIXConfig(architecture="alix_atari", initial_shift=1.0, nd_target=0.75, lix_after="last",
                        trunk_features=50)


# ---------------------------------------------------------------------------------------------------
# Normalised discontinuity (eq. 6) and the custom VJP that feeds it to S (eq. 7).
# ---------------------------------------------------------------------------------------------------


def normalized_discontinuity(grad_map: jax.Array, eps: float = ND_EPS) -> jax.Array:
  """Normalised discontinuity ND of feature gradients (arXiv 2207.00986, eq. 6).

  With ḡ the batch mean of `grad_map` ([B, H, W, C], NHWC) and, for every (i, j, c), its 3x3
  replicate-padded neighbourhood N(i, j) (centre included, 9 values):

    signal² = (Σ_{n∈N} ḡ_n² − ḡ_ij²) / 8                 (mean square of the 8 neighbours)
    noise²  = Σ_{n∈N} (ḡ_n − ḡ_ij)² / 8                   (mean squared difference to the centre)
    ND      = mean_{i,j,c} log(1 + noise² / (signal² + eps))

  as the authors' `LearnS.backward` (unbiased estimates with normaliser N² − 1 = 8). ND = 0 for a
  spatially constant gradient map; ND = log 3 in the interior of a ±1 checkerboard.

  Args:
    grad_map: gradients w.r.t. a feature map, [B, H, W, C] (or [H, W, C], treated as B = 1).
    eps: stabiliser of the ratio (authors: 1e-20).

  Returns:
    Scalar ND.
  """
  if grad_map.ndim == 3:
    grad_map = grad_map[None]
  if grad_map.ndim != 4:
    raise ValueError(f"normalized_discontinuity expects [B, H, W, C] gradients, got shape {grad_map.shape}.")
  g = jnp.mean(grad_map.astype(jnp.float32), axis=0)  # [H, W, C]
  height, width = g.shape[:2]
  padded = jnp.pad(g, ((1, 1), (1, 1), (0, 0)), mode="edge")
  neighbours = jnp.stack([padded[di:di + height, dj:dj + width]
                          for di in range(ND_KERNEL_SIZE) for dj in range(ND_KERNEL_SIZE)])  # [9, H, W, C]
  normaliser = ND_KERNEL_SIZE * ND_KERNEL_SIZE - 1
  signal_sq = (jnp.sum(jnp.square(neighbours), axis=0) - jnp.square(g)) / normaliser
  noise_sq = jnp.sum(jnp.square(neighbours - g[None]), axis=0) / normaliser
  return jnp.mean(jnp.log1p(noise_sq / (signal_sq + eps)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def learn_shift(features: jax.Array, shift: jax.Array, nd_target: float = ND_TARGET,
                eps: float = ND_EPS) -> jax.Array:
  """Identity on `features`; S's cotangent is ND_target − ND(∂L/∂features) (arXiv 2207.00986, eq. 7).

  The cotangent of `features` passes through unchanged. The "gradient" given to `shift` ignores the
  loss scale (it only depends on the spatial structure of the feature gradients), exactly as the
  authors' `LearnS` autograd function, so gradient descent moves S up when ND > ND_target.
  """
  del shift, nd_target, eps
  return features


def _learn_shift_fwd(features, shift, nd_target, eps):
  del nd_target, eps
  return features, jnp.zeros_like(shift)


def _learn_shift_bwd(nd_target, eps, zeros_like_shift, cotangent):
  nd = normalized_discontinuity(cotangent, eps)
  shift_cotangent = (nd_target - nd).astype(zeros_like_shift.dtype) + zeros_like_shift
  return cotangent, shift_cotangent


learn_shift.defvjp(_learn_shift_fwd, _learn_shift_bwd)


# ---------------------------------------------------------------------------------------------------
# LIX layer (eq. 5).
# ---------------------------------------------------------------------------------------------------


def _interpolation_matrix(size: int, delta: jax.Array, dtype) -> jax.Array:
  """[..., size, size] linear-interpolation weights: row i samples position i + delta, with replicate padding
  (indices clamped to [0, size − 1]). `delta` is a scalar or [B]."""
  base = jnp.floor(delta)
  frac = (delta - base).astype(dtype)[..., None, None]
  index = jnp.arange(size) + base.astype(jnp.int32)[..., None]
  low = jax.nn.one_hot(jnp.clip(index, 0, size - 1), size, dtype=dtype)
  high = jax.nn.one_hot(jnp.clip(index + 1, 0, size - 1), size, dtype=dtype)
  return (1.0 - frac) * low + frac * high


def bilinear_shift(features: jax.Array, delta: jax.Array) -> jax.Array:
  """Bilinear sample of the replicate-padded NHWC map at (i + δ_y, j + δ_x).

  Args:
    features: [B, H, W, C].
    delta: [2] (one (δ_y, δ_x) for the whole batch) or [B, 2] (one per example), in pixels.

  Because the offset is the same for all positions, the 2-D bilinear sample is the product of two
  1-D linear interpolations, each a small matrix product (rows: [H, H], columns: [W, W]); clamping
  indices to [0, size − 1] is replicate padding of any width. As products, forward and backward are
  dense matmuls instead of gathers and scatter-adds, which measured slower on the DER torso
  (BUILD_NOTES.md, "A-LIX cost"). Every output is a convex combination of inputs, so
  Σ ∂L/∂input = Σ ∂L/∂output. HIGHEST precision keeps the weights exact on accelerators (no TF32).
  """
  height, width = features.shape[1:3]
  rows = _interpolation_matrix(height, delta[..., 0], features.dtype)
  cols = _interpolation_matrix(width, delta[..., 1], features.dtype)
  batch = "" if delta.ndim == 1 else "b"
  precision = jax.lax.Precision.HIGHEST
  x = jnp.einsum(f"{batch}ih,bhwc->biwc", rows, features, precision=precision)
  return jnp.einsum(f"{batch}jw,biwc->bijc", cols, x, precision=precision)


class LocalSignalMixing(hk.Module):
  """LIX layer (arXiv 2207.00986, eq. 5) for NHWC feature maps.

  Training: output = bilinear sample of the replicate-padded input at (i + δ_y, j + δ_x),
  δ ~ U[−S, S]² with S = clip(shift, 0, max_shift); one δ per batch by default (authors'
  `fixed_batch: true`), one per example with `per_example_shift=True`. Evaluation: identity.
  S enters through `stop_gradient`: it is tuned only by `learn_shift` (eq. 7), never by the loss.
  Uses `hk.next_rng_key()` in training.
  """

  def __init__(self, max_shift: float = MAX_SHIFT, per_example_shift: bool = False,
               name: str = "local_signal_mixing"):
    super().__init__(name=name)
    self._max_shift = max_shift
    self._per_example_shift = per_example_shift

  def __call__(self, features: jax.Array, shift: jax.Array, is_training: bool) -> jax.Array:
    if features.ndim != 4:
      raise ValueError(f"LocalSignalMixing expects NHWC features, got shape {features.shape}.")
    if not is_training:
      return features
    s = jax.lax.stop_gradient(jnp.clip(jnp.asarray(shift, features.dtype), 0.0, self._max_shift))
    shape = (features.shape[0], 2) if self._per_example_shift else (2,)
    unit = jax.random.uniform(hk.next_rng_key(), shape, features.dtype, minval=-1.0, maxval=1.0)
    return bilinear_shift(features, unit * s)
