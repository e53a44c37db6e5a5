"""Linear Recurrent Unit (LRU; Orvieto et al. 2023, arXiv 2303.06349, Sec. 3 and Appendix A).

    x_k = diag(λ) x_{k−1} + γ ⊙ (B u_k),    y_k = Re(C x_k) + D ⊙ u_k,
    λ_j = exp(−exp(ν_j) + i·exp(θ_j)),      γ_j = √(1 − |λ_j|²)  (stored as log γ and learned),

with complex B [N, d], C [d, N] and real D [d]. Stable exponential parameterisation: |λ| =
exp(−exp(ν)) < 1; here exp(ν) is floored at 1e-6 so |λ| < 1 also in float32 when ν → −∞.
Ring initialisation: |λ|² ~ U[r_min², r_max²], θ ~ U[0, max_phase] (Sec. 3.3, Lemma 3.2).

Defaults: r_min = 0, max_phase = 6.28 as the authors' reference code (NicolasZucchet/minimal-LRU,
lru/model.py); r_max = 0.99 (that code's default 1.0 can give |λ| = 1 at init; the paper uses r_max
close to 1 for long-range tasks). B ~ N(0, 1/(2d)) per real/imaginary part, C ~ N(0, 1/N),
D ~ N(0, 1) as in that code.

Training: `jax.lax.associative_scan` over the linear recurrence with the monoid
(a_i, b_i) ∘ (a_j, b_j) = (a_j a_i, a_j b_i + b_j); episode starts are handled by the resettable
form a_t = 0 where resets[t] (the carried state is zeroed, and zero is the initial state), and the
carried state x_0 enters as b_1 += a_1 x_0. Acting: the one-step recurrence.

Core (`LRUCore`): linear embedding to d = `hidden_size`, then `num_layers` residual blocks
u ← u + GLU(GELU(LRU(LayerNorm(u)))) (the minimal-LRU `SequenceLayer` with pre-norm), output [B, d].
State: a tuple with one `LRUState(real [B, N], imag [B, N])` per layer (real arrays, so stored and
batched like any other state).
"""

import math
from typing import NamedTuple, Optional, Tuple

import haiku as hk
import jax
import jax.numpy as jnp

from repertory.errors import ConfigError
from repertory.networks.cores.base import RecurrentCore

R_MIN = 0.0  # minimal-LRU lru/model.py default.
R_MAX = 0.99  # below minimal-LRU's 1.0 so that |λ| < 1 at init.
MAX_PHASE = 6.28  # minimal-LRU lru/model.py default (≈ 2π).
MIN_DECAY = 1e-6  # floor on exp(ν): |λ| ≤ exp(−1e-6) < 1 in float32.
HIDDEN_SIZE = 128
NUM_LAYERS = 1


class LRUState(NamedTuple):
  real: jax.Array  # [B, N]
  imag: jax.Array  # [B, N]


def lru_lambda(nu_log: jax.Array, theta_log: jax.Array) -> jax.Array:
  """λ = exp(−exp(ν) + i·exp(θ)) with exp(ν) ≥ MIN_DECAY, so |λ| < 1 for every parameter value."""
  magnitude = jnp.exp(-jnp.maximum(jnp.exp(nu_log), MIN_DECAY))
  phase = jnp.exp(theta_log)
  return magnitude * jnp.exp(1j * phase)


def _binary_operator(earlier, later):
  a_i, b_i = earlier
  a_j, b_j = later
  return a_j * a_i, a_j * b_i + b_j


def linear_recurrence_scan(a: jax.Array, b: jax.Array, x0: jax.Array, resets: jax.Array) -> jax.Array:
  """All states of x_t = (1 − reset_t)·a_t ⊙ x_{t−1} + b_t from x0, with a, b [T, ...], resets [T, B]
  broadcast over trailing axes; parallel (associative scan) over time."""
  keep = 1.0 - resets.astype(jnp.float32).reshape(resets.shape + (1,) * (a.ndim - resets.ndim))
  a = a * keep
  b = b.at[0].add(a[0] * x0)
  _, states = jax.lax.associative_scan(_binary_operator, (a, b), axis=0)
  return states


class LinearRecurrentUnit(hk.Module):
  """The LRU layer: u [T, B, d] → y [T, B, d] (scan) or u [B, d] → y [B, d] (`step`)."""

  def __init__(self, state_size: int, r_min: float = R_MIN, r_max: float = R_MAX, max_phase: float = MAX_PHASE,
               name: str = "linear_recurrent_unit"):
    super().__init__(name=name)
    if not 0.0 <= r_min < r_max < 1.0:
      raise ConfigError(f"lru needs 0 <= r_min < r_max < 1, got r_min={r_min}, r_max={r_max}")
    self._n = state_size
    self._r_min, self._r_max, self._max_phase = r_min, r_max, max_phase

  def _nu_init(self, shape, dtype):
    u = jax.random.uniform(hk.next_rng_key(), shape, dtype)
    magnitude_sq = u * (self._r_max ** 2 - self._r_min ** 2) + self._r_min ** 2  # |λ|² ~ U[r_min², r_max²]
    return jnp.log(-0.5 * jnp.log(magnitude_sq))  # |λ| = exp(−exp(ν))

  def _theta_init(self, shape, dtype):
    u = jax.random.uniform(hk.next_rng_key(), shape, dtype)
    return jnp.log(self._max_phase * u)

  def parameters(self, d: int):
    """(λ [N] complex, γ·B [N, d] complex, C [d, N] complex, D [d]); creates the parameters."""
    n = self._n
    nu_log = hk.get_parameter("nu_log", [n], jnp.float32, init=self._nu_init)
    theta_log = hk.get_parameter("theta_log", [n], jnp.float32, init=self._theta_init)
    gamma_log = hk.get_parameter(
        "gamma_log", [n], jnp.float32,
        init=lambda *_: jnp.log(jnp.sqrt(1.0 - jnp.abs(lru_lambda(nu_log, theta_log)) ** 2)))
    normal = lambda std: hk.initializers.RandomNormal(stddev=std)
    b_re = hk.get_parameter("b_re", [n, d], jnp.float32, init=normal(1.0 / math.sqrt(2 * d)))
    b_im = hk.get_parameter("b_im", [n, d], jnp.float32, init=normal(1.0 / math.sqrt(2 * d)))
    c_re = hk.get_parameter("c_re", [d, n], jnp.float32, init=normal(1.0 / math.sqrt(n)))
    c_im = hk.get_parameter("c_im", [d, n], jnp.float32, init=normal(1.0 / math.sqrt(n)))
    d_skip = hk.get_parameter("d", [d], jnp.float32, init=normal(1.0))
    lam = lru_lambda(nu_log, theta_log)
    b_norm = (b_re + 1j * b_im) * jnp.exp(gamma_log)[:, None]
    return lam, b_norm, c_re + 1j * c_im, d_skip

  def __call__(self, us: jax.Array, x0: jax.Array, resets: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """us [T, B, d], x0 [B, N] complex, resets [T, B] → (y [T, B, d], x_T [B, N] complex)."""
    lam, b_norm, c, d_skip = self.parameters(us.shape[-1])
    bu = jnp.einsum("nd,tbd->tbn", b_norm, us.astype(b_norm.dtype))
    states = linear_recurrence_scan(jnp.broadcast_to(lam, bu.shape), bu, x0, resets)
    ys = jnp.einsum("dn,tbn->tbd", c, states).real + d_skip * us
    return ys, states[-1]

  def step(self, u: jax.Array, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """One step of the recurrence: u [B, d], x [B, N] complex → (y [B, d], new x)."""
    lam, b_norm, c, d_skip = self.parameters(u.shape[-1])
    x = lam * x + u.astype(b_norm.dtype) @ b_norm.T
    return (x @ c.T).real + d_skip * u, x


class LRUCore(RecurrentCore):
  """Stacked LRU blocks with GLU and residuals: x [B, D] → output [B, hidden_size]."""

  def __init__(self, hidden_size: int = HIDDEN_SIZE, state_size: Optional[int] = None, num_layers: int = NUM_LAYERS,
               r_min: float = R_MIN, r_max: float = R_MAX, max_phase: float = MAX_PHASE, name: str = "lru_core"):
    super().__init__(name=name)
    if num_layers < 1:
      raise ConfigError(f"lru num_layers must be >= 1, got {num_layers}")
    self._d = hidden_size
    self._n = state_size or hidden_size
    self._num_layers = num_layers
    self._embedding = hk.Linear(hidden_size, name="embedding")
    self._lrus = [LinearRecurrentUnit(self._n, r_min, r_max, max_phase, name=f"lru_{i}") for i in range(num_layers)]
    self._norms = [hk.LayerNorm(-1, True, True, name=f"norm_{i}") for i in range(num_layers)]
    self._glu_out = [hk.Linear(hidden_size, name=f"glu_out_{i}") for i in range(num_layers)]
    self._glu_gate = [hk.Linear(hidden_size, name=f"glu_gate_{i}") for i in range(num_layers)]

  def initial_state(self, batch_size: Optional[int]) -> Tuple[LRUState, ...]:
    zeros = jnp.zeros((batch_size, self._n), jnp.float32)
    return tuple(LRUState(zeros, zeros) for _ in range(self._num_layers))

  def _glu(self, i: int, y: jax.Array) -> jax.Array:
    y = jax.nn.gelu(y)
    return self._glu_out[i](y) * jax.nn.sigmoid(self._glu_gate[i](y))

  def _step(self, x: jax.Array, state: Tuple[LRUState, ...]) -> Tuple[jax.Array, Tuple[LRUState, ...]]:
    u = self._embedding(x)
    new_state = []
    for i, layer_state in enumerate(state):
      y, h = self._lrus[i].step(self._norms[i](u), layer_state.real + 1j * layer_state.imag)
      u = u + self._glu(i, y)
      new_state.append(LRUState(h.real, h.imag))
    return u, tuple(new_state)

  def unroll(self, xs: jax.Array, state: Tuple[LRUState, ...],
             resets: jax.Array) -> Tuple[jax.Array, Tuple[LRUState, ...]]:
    u = self._embedding(xs)
    new_state = []
    for i, layer_state in enumerate(state):
      y, h = self._lrus[i](self._norms[i](u), layer_state.real + 1j * layer_state.imag, resets)
      u = u + self._glu(i, y)
      new_state.append(LRUState(h.real, h.imag))
    return u, tuple(new_state)
