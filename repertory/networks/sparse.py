"""Sparse layers by reparameterisation, as Haiku layer options: Powerpropagation and Top-KAST.

Powerpropagation (Schwarz et al. 2021, "Powerpropagation: A sparsity inducing weight reparameterisation",
NeurIPS 2021, arXiv 2110.00296, Sec. 3, eqs. 1-2). The layer stores v and computes with

    w = v |v|^(α−1)   (eq. 1, sign kept),      ∂L/∂v = α |v|^(α−1) ∂L/∂w   (eq. 2),

so updates scale with magnitude ("rich get richer"): small weights barely move and can be pruned after
training (`prune_by_magnitude` on the `effective_weights`). α = 1 is a dense layer. Initialisation:
v = sign(u)|u|^(1/α) with u from the dense layer's usual initialiser, so w = u starts exactly as the dense
layer it replaces and only the dynamics differ (the authors' released code does the same: a fan-in
truncated normal, then the α-th root).

Top-KAST (Jayakumar et al. 2020, "Top-KAST: Top-K Always Sparse Training", NeurIPS 2020,
arXiv 2106.03517, Sec. 2). Per weight tensor θ, the forward pass uses only the top-D fraction A by |θ|
(Sec. 2.1) and the gradient reaches the larger top-(D+M) set B ⊇ A (Sec. 2.2: Δθ_i = −η ∇_α L_i on B,
0 elsewhere). With masks m_A ⊆ m_B,

    θ_used = θ·m_B − stop_gradient(θ·(m_B − m_A))

the value is θ·m_A and ∂L/∂θ = m_B·∂L/∂θ_used (θ·m_A + θ·m_B − sg(θ·m_B) has the same value but
doubles the gradient on A). The exploration regularisation of Sec. 2.3 (its unnumbered Loss_R display:
|θ_i| on A, |θ_i|/D on B∖A, 0 elsewhere, "expressed as an L2 regularisation") is `topkast_penalty`,
with the magnitudes squared.

Counts: a density d of n entries keeps round(d·n) of them (half up, at least 1), picked by `jax.lax.top_k`
on the flattened |θ|, so tied magnitudes never change the count. `make_linear` / `make_conv` build any of
`LAYER_KINDS` by name; every layer names its parameters `w` and `b` like `hk.Linear` and `Conv2DValid`.
"""

import functools
import inspect
import math
from typing import Any, Callable, Optional, Tuple

import haiku as hk
import jax
import jax.numpy as jnp

from repertory.errors import ConfigError
from repertory.networks.conv import Conv2DValid, conv2d_valid

# α = 1 is the dense baseline (arXiv 2110.00296 Sec. 3); the default is the next integer power, α = 2.
POWERPROP_ALPHA = 2.0
# arXiv 2106.03517 Sec. 4.1: "a standard training run ... with forward sparsity of 80% and backward sparsity
# of 50%", i.e. D = 0.2 and D + M = 0.5 (also the fixed forward sparsity of Fig. 2a).
TOPKAST_FORWARD_DENSITY = 0.2
TOPKAST_BACKWARD_DENSITY = 0.5
# arXiv 2106.03517 Appendix B (ImageNet): "For Top-KAST we use a weight decay of 1e-4", read here as the
# coefficient of the Sec. 2.3 L2 penalty.
TOPKAST_PENALTY_COEFFICIENT = 1e-4

WeightMap = Callable[[jax.Array], jax.Array]  # stored `w` -> the weight the layer computes with
InitMap = Callable[[hk.initializers.Initializer], hk.initializers.Initializer]  # w's init -> stored w's init

WEIGHT_NAME = "w"  # the kernel of hk.Linear, Conv2DValid and every layer here; biases (`b`) are never touched.


def _check_alpha(alpha: float) -> None:
  if not alpha >= 1.0:
    raise ConfigError(f"Powerprop alpha={alpha}; use alpha >= 1 (1 is a dense layer; default {POWERPROP_ALPHA}).")


def _check_densities(forward_density: float, backward_density: float) -> None:
  for label, density in (("forward_density", forward_density), ("backward_density", backward_density)):
    if not 0.0 < density <= 1.0:
      raise ConfigError(f"Top-KAST {label}={density} is outside (0, 1]; use the fraction of weights kept "
                        f"(paper: forward {TOPKAST_FORWARD_DENSITY}, backward {TOPKAST_BACKWARD_DENSITY}).")
  if backward_density < forward_density:
    raise ConfigError(f"Top-KAST backward_density={backward_density} < forward_density={forward_density}; "
                      f"the backward set contains the forward set, so use backward_density >= forward_density.")


def kept_count(density: float, size: int) -> int:
  """How many of `size` entries a `density` keeps: round(density·size), half up, between 1 and size."""
  return min(size, max(1, math.floor(density * size + 0.5)))


def _top_indices(w: jax.Array, count: int) -> jax.Array:
  """Flat indices of the `count` largest |w|, largest first; exactly `count` of them, ties or not."""
  _, indices = jax.lax.top_k(jnp.abs(w).reshape(-1), count)
  return indices


def _mask(w: jax.Array, indices: jax.Array) -> jax.Array:
  """1 at the flat `indices` of w, 0 elsewhere, shaped and typed like w."""
  return jnp.zeros(w.size, w.dtype).at[indices].set(1).reshape(w.shape)


def _is_weight(path, names: Tuple[str, ...] = (WEIGHT_NAME,)) -> bool:
  return bool(path) and getattr(path[-1], "key", None) in names


def _map_weights(fn: Callable[[jax.Array], jax.Array], tree: Any, names: Tuple[str, ...] = (WEIGHT_NAME,)) -> Any:
  """`fn` applied to every leaf stored under a key of `names` (`w`); every other leaf (biases, …) unchanged."""
  return jax.tree_util.tree_map_with_path(lambda path, leaf: fn(leaf) if _is_weight(path, names) else leaf, tree)


def powerprop_weight(v: jax.Array, alpha: float = POWERPROP_ALPHA) -> jax.Array:
  """w = v|v|^(α−1) (eq. 1). Written as sign(v)|v|^α so that the gradient α|v|^(α−1) (eq. 2) is 0, not NaN,
  at v = 0."""
  if alpha == 1.0:
    return v  # sign(v)|v| would have gradient 0, not 1, at v = 0
  return jnp.sign(v) * jnp.abs(v) ** alpha


def powerprop_initializer(w_init: hk.initializers.Initializer,
                          alpha: float = POWERPROP_ALPHA) -> hk.initializers.Initializer:
  """Initialiser of v such that the effective weight w = powerprop_weight(v) is distributed as `w_init`."""
  def init(shape, dtype):
    u = w_init(shape, dtype)
    return jnp.sign(u) * jnp.abs(u) ** (1.0 / alpha)
  return init


def effective_weights(params: Any, alpha: float = POWERPROP_ALPHA) -> Any:
  """`params` with every stored `w` (v) replaced by the weight w the Powerprop layer computes with. Every `w`
  is transformed: pass only the Powerprop layers' parameters (`hk.data_structures.filter`) in a mixed net."""
  _check_alpha(alpha)
  return _map_weights(lambda v: powerprop_weight(v, alpha), params)


def prune_by_magnitude(weights_tree: Any, sparsity: float, weight_names: Tuple[str, ...] = (WEIGHT_NAME,)) -> Any:
  """`weights_tree` with the fraction `sparsity` of smallest-|w| entries of each `w` set to 0; biases kept.

  Each tensor keeps its `kept_count(1 − sparsity, n)` largest-magnitude entries (ties broken by index, so
  the count is exact). For evaluation at a target sparsity; for Powerprop prune the `effective_weights`.
  `weight_names`: the keys of the tensors pruned (a noisy layer's mean weight is `w_mu`).
  """
  if not 0.0 < sparsity < 1.0:
    raise ConfigError(f"prune_by_magnitude sparsity={sparsity} is outside (0, 1); use the fraction of each "
                      f"weight tensor to zero, e.g. 0.9.")
  return _map_weights(lambda w: _keep_largest(w, kept_count(1.0 - sparsity, w.size)), weights_tree, weight_names)


# Jitted so that an eager call (evaluation) compiles once per tensor shape rather than once per primitive.
@functools.partial(jax.jit, static_argnames="count")
def _keep_largest(w: jax.Array, count: int) -> jax.Array:
  return w * _mask(w, _top_indices(w, count))


@functools.partial(jax.jit, static_argnames=("forward_density", "backward_density"))  # as `_keep_largest`
def topkast_masks(w: jax.Array, forward_density: float = TOPKAST_FORWARD_DENSITY,
                  backward_density: float = TOPKAST_BACKWARD_DENSITY) -> Tuple[jax.Array, jax.Array]:
  """(m_A, m_B): 1 on the top `forward_density` / top `backward_density` of |w|, with m_A ⊆ m_B."""
  _check_densities(forward_density, backward_density)
  backward_indices = _top_indices(w, kept_count(backward_density, w.size))
  forward_indices = backward_indices[:kept_count(forward_density, w.size)]
  return _mask(w, forward_indices), _mask(w, backward_indices)


def topkast_weight(w: jax.Array, forward_density: float = TOPKAST_FORWARD_DENSITY,
                   backward_density: float = TOPKAST_BACKWARD_DENSITY) -> jax.Array:
  """The weight a Top-KAST layer computes with: value w·m_A, gradient passed to w on B only."""
  forward_mask, backward_mask = topkast_masks(w, forward_density, backward_density)
  return w * backward_mask - jax.lax.stop_gradient(w * (backward_mask - forward_mask))


def topkast_penalty(params: Any, forward_density: float = TOPKAST_FORWARD_DENSITY,
                    backward_density: float = TOPKAST_BACKWARD_DENSITY,
                    coefficient: float = TOPKAST_PENALTY_COEFFICIENT) -> jax.Array:
  """Exploration regularisation (arXiv 2106.03517 Sec. 2.3), summed over every `w` in `params`:

      coefficient · Σ_w [ Σ_{i∈A} w_i² + Σ_{i∈B∖A} w_i² / D ],   D = forward_density,

  nothing on the rest, so its gradient has the sparsity of the main loss's (the paper's footnote 3). Pass
  the Top-KAST layers' parameters (e.g. selected with `hk.data_structures.filter`) when the network also has
  dense layers; add the result to the loss.
  """
  _check_densities(forward_density, backward_density)

  def layer_penalty(w):
    forward_mask, backward_mask = topkast_masks(w, forward_density, backward_density)
    squared = jnp.square(w)
    return jnp.sum(squared * forward_mask) + jnp.sum(squared * (backward_mask - forward_mask)) / forward_density

  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  return coefficient * sum((layer_penalty(w) for path, w in leaves if _is_weight(path)), jnp.zeros(()))


class _ReparameterisedLinear(hk.Module):
  """`hk.Linear` (same parameters `w` [in, out] and `b`, same default initialisers) that stores `w` through
  `stored_init` and computes with `weight(w)`."""

  def __init__(self, output_size: int, weight: WeightMap, stored_init: InitMap,
               w_init: Optional[hk.initializers.Initializer], b_init: Optional[hk.initializers.Initializer],
               name: Optional[str]):
    super().__init__(name=name)
    self._output_size = output_size
    self._weight, self._stored_init = weight, stored_init
    self._w_init, self._b_init = w_init, b_init or jnp.zeros

  def __call__(self, inputs: jax.Array) -> jax.Array:
    fan_in = inputs.shape[-1]
    w_init = self._w_init or hk.initializers.TruncatedNormal(stddev=1.0 / math.sqrt(fan_in))
    w = hk.get_parameter(WEIGHT_NAME, (fan_in, self._output_size), inputs.dtype, init=self._stored_init(w_init))
    b = hk.get_parameter("b", (self._output_size,), inputs.dtype, init=self._b_init)
    return inputs @ self._weight(w) + b


class _ReparameterisedConv2D(hk.Module):
  """`Conv2DValid` (same parameters `w` [k, k, in, out] and `b`, same default initialisers, computed by
  `conv2d_valid`) that stores `w` through `stored_init` and computes with the kernel `weight(w)`."""

  def __init__(self, output_channels: int, kernel_size: int, stride: int, weight: WeightMap,
               stored_init: InitMap, w_init: Optional[hk.initializers.Initializer],
               b_init: Optional[hk.initializers.Initializer], name: Optional[str]):
    super().__init__(name=name)
    self._channels, self._kernel, self._stride = output_channels, kernel_size, stride
    self._weight, self._stored_init = weight, stored_init
    self._w_init, self._b_init = w_init, b_init or jnp.zeros

  def __call__(self, x: jax.Array) -> jax.Array:
    w_init = self._w_init or hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")
    shape = (self._kernel, self._kernel, x.shape[-1], self._channels)
    w = hk.get_parameter(WEIGHT_NAME, shape, x.dtype, init=self._stored_init(w_init))
    b = hk.get_parameter("b", (self._channels,), x.dtype, init=self._b_init)
    return conv2d_valid(x, self._weight(w), self._stride) + b


class PowerpropLinear(_ReparameterisedLinear):
  """Linear layer computing with w = v|v|^(α−1); `w` stores v. `w_init` initialises the effective weight
  (default: `hk.Linear`'s) and v is its α-th root."""

  def __init__(self, output_size: int, alpha: float = POWERPROP_ALPHA,
               w_init: Optional[hk.initializers.Initializer] = None,
               b_init: Optional[hk.initializers.Initializer] = None, name: Optional[str] = None):
    _check_alpha(alpha)
    super().__init__(output_size, lambda v: powerprop_weight(v, alpha),
                     lambda init: powerprop_initializer(init, alpha), w_init, b_init, name)


class PowerpropConv2D(_ReparameterisedConv2D):
  """VALID convolution computing with the kernel w = v|v|^(α−1); `w` stores v. `w_init` initialises the
  effective kernel (default: `Conv2DValid`'s) and v is its α-th root."""

  def __init__(self, output_channels: int, kernel_size: int, stride: int, alpha: float = POWERPROP_ALPHA,
               w_init: Optional[hk.initializers.Initializer] = None,
               b_init: Optional[hk.initializers.Initializer] = None, name: Optional[str] = None):
    _check_alpha(alpha)
    super().__init__(output_channels, kernel_size, stride, lambda v: powerprop_weight(v, alpha),
                     lambda init: powerprop_initializer(init, alpha), w_init, b_init, name)


class TopKASTLinear(_ReparameterisedLinear):
  """Linear layer whose forward pass uses the top `forward_density` of `w` by magnitude and whose gradient
  reaches the top `backward_density`; add `topkast_penalty` of its parameters to the loss."""

  def __init__(self, output_size: int, forward_density: float = TOPKAST_FORWARD_DENSITY,
               backward_density: float = TOPKAST_BACKWARD_DENSITY,
               w_init: Optional[hk.initializers.Initializer] = None,
               b_init: Optional[hk.initializers.Initializer] = None, name: Optional[str] = None):
    _check_densities(forward_density, backward_density)
    super().__init__(output_size, lambda w: topkast_weight(w, forward_density, backward_density),
                     lambda init: init, w_init, b_init, name)


class TopKASTConv2D(_ReparameterisedConv2D):
  """VALID convolution whose forward pass uses the top `forward_density` of the kernel by magnitude and whose
  gradient reaches the top `backward_density`; add `topkast_penalty` of its parameters to the loss."""

  def __init__(self, output_channels: int, kernel_size: int, stride: int,
               forward_density: float = TOPKAST_FORWARD_DENSITY,
               backward_density: float = TOPKAST_BACKWARD_DENSITY,
               w_init: Optional[hk.initializers.Initializer] = None,
               b_init: Optional[hk.initializers.Initializer] = None, name: Optional[str] = None):
    _check_densities(forward_density, backward_density)
    super().__init__(output_channels, kernel_size, stride,
                     lambda w: topkast_weight(w, forward_density, backward_density), lambda init: init,
                     w_init, b_init, name)


_LINEARS = {"dense": hk.Linear, "powerprop": PowerpropLinear, "topkast": TopKASTLinear}
_CONVS = {"dense": Conv2DValid, "powerprop": PowerpropConv2D, "topkast": TopKASTConv2D}
LAYER_KINDS = tuple(_LINEARS)


def _layer_class(table: dict, kind: str, options: dict, fixed: Tuple[str, ...]) -> type:
  """The class of `kind` in `table`; ConfigError for an unknown kind or an option it does not take."""
  if kind not in table:
    raise ConfigError(f"unknown layer kind '{kind}'; choose one of {', '.join(LAYER_KINDS)}")
  accepted = [p for p in inspect.signature(table[kind].__init__).parameters if p not in ("self",) + fixed]
  unknown = sorted(set(options) - set(accepted))
  if unknown:
    raise ConfigError(f"layer kind '{kind}' does not take {', '.join(unknown)}; it takes {', '.join(accepted)}")
  return table[kind]


def make_linear(kind: str, output_size: int, name: Optional[str] = None, **options: Any) -> hk.Module:
  """`hk.Linear` ("dense"), `PowerpropLinear` or `TopKASTLinear` with `options`; inside `hk.transform`."""
  layer = _layer_class(_LINEARS, kind, options, ("output_size", "name"))
  return layer(output_size, name=name, **options)


def make_conv(kind: str, channels: int, kernel: int, stride: int,
              w_init: Optional[hk.initializers.Initializer] = None, name: Optional[str] = None,
              **options: Any) -> hk.Module:
  """`Conv2DValid` ("dense"), `PowerpropConv2D` or `TopKASTConv2D` with `options`; inside `hk.transform`."""
  layer = _layer_class(_CONVS, kind, options, ("output_channels", "kernel_size", "stride", "w_init", "name"))
  return layer(channels, kernel, stride, w_init=w_init, name=name, **options)
