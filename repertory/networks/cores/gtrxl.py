"""Gated Transformer-XL (GTrXL; Parisotto et al. 2019, arXiv 1910.06764, Sec. 3, Eq. 1–10 and Fig. 1).

Per layer l with input E (the residual stream, [B, T, d]) and memory M (the layer's last `memory_size`
inputs, stop-gradient):

    Ȳ  = RelMHA(LN([SG(M), E]))        queries from the E rows only (Transformer-XL, arXiv 1901.02860)
    Y  = g(E, ReLU(Ȳ))
    Ē  = MLP(LN(Y))
    E' = g(Y, ReLU(Ē))

Identity-map reordering: LayerNorm only on the inputs of the sub-layers, never on the residual path,
and no final LayerNorm. GRU-type gate (Eq. "GRU-type gating"):

    r = σ(W_r y + U_r x),  z = σ(W_z y + U_z x − b_g),  ĥ = tanh(W_g y + U_g (r ⊙ x)),
    g(x, y) = (1 − z) ⊙ x + z ⊙ ĥ

with the bias b_g **subtracted** (a positive b_g pushes z → 0 and the block towards the identity;
the paper uses b_g = 2 in its experiments). W, U have no bias; b_g is a learned per-unit parameter
initialised to `gate_bias`. With all W, U = 0: g(x, y) = (1 − σ(−b_g)) x.

Relative positions as Transformer-XL: score(i, j) = (q_i + u)·k_j + (q_i + v)·W_R R_{i−j}, R the
sinusoid table, u and v learned per head.

Memory and episodes. The state holds, per layer, the last M inputs of that layer ([B, M, d], oldest
first) and one validity mask [B, M] shared by the layers. A query attends to keys at distance
0..M (itself and the M previous inputs of its layer) that belong to the same episode: memory slots
filled before a reset (flagged inside the unroll window or before it) are masked out, and so are
window steps before a reset. This sliding window (width M + 1) is what makes `unroll` (all T steps
in parallel, attention over [memory; window]) equal to stepping one at a time and to unrolling in
segments; a plain Transformer-XL segment would let later window steps see up to M + T − 1 inputs.

Paper scale (DMLab-30, Sec. 4): 12 layers, d = 256, memory 512 (arXiv 1910.06764, Sec. 4).
Defaults here are small for CPU: 2 layers, d = 64, 4 heads, memory 32, MLP width 4d.
"""

import math
from typing import List, NamedTuple, Optional, Tuple

import haiku as hk
import jax
import jax.numpy as jnp

from repertory.errors import ConfigError
from repertory.networks.cores.base import RecurrentCore

GATE_BIAS = 2.0  # b_g, arXiv 1910.06764 (Sec. 3.2 / experiments); subtracted inside z.
NUM_LAYERS = 2  # paper: 12 (arXiv 1910.06764, Sec. 4); small for CPU.
HIDDEN_SIZE = 64  # d; paper: 256.
NUM_HEADS = 4  # our choice (the paper's head count was not checked).
MEMORY_SIZE = 32  # paper: 512.
_NEG_INF = -1e30


class GTrXLState(NamedTuple):
  memory: Tuple[jax.Array, ...]  # per layer [B, M, d]: that layer's last M inputs, oldest first
  valid: jax.Array  # [B, M] bool: slot holds an input of the current episode


def sinusoid_table(length: int, dim: int) -> jax.Array:
  """Transformer-XL relative-position table R [length, dim] for distances 0..length−1:
  [sin(k·f_i), cos(k·f_i)] with f_i = 10000^(−2i/dim)."""
  positions = jnp.arange(length, dtype=jnp.float32)
  inv_freq = 1.0 / (10000.0 ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim))
  angles = positions[:, None] * inv_freq[None, :]
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)[:, :dim]


class GRUGate(hk.Module):
  """g(x, y) = (1 − z) ⊙ x + z ⊙ ĥ with z = σ(W_z y + U_z x − b_g) (arXiv 1910.06764, Sec. 3.2)."""

  def __init__(self, gate_bias: float = GATE_BIAS, name: str = "gru_gate"):
    super().__init__(name=name)
    self._gate_bias = gate_bias

  def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
    d = x.shape[-1]
    linear = lambda name: hk.Linear(d, with_bias=False, name=name)
    r = jax.nn.sigmoid(linear("w_r")(y) + linear("u_r")(x))
    b_g = hk.get_parameter("b_g", [d], x.dtype, init=hk.initializers.Constant(self._gate_bias))
    z = jax.nn.sigmoid(linear("w_z")(y) + linear("u_z")(x) - b_g)
    h = jnp.tanh(linear("w_g")(y) + linear("u_g")(r * x))
    return (1.0 - z) * x + z * h


class GTrXLBlock(hk.Module):
  """One GTrXL layer: gated relative multi-head attention then a gated MLP."""

  def __init__(self, num_heads: int, ffn_size: int, memory_size: int, gate_bias: float, name: str):
    super().__init__(name=name)
    self._num_heads = num_heads
    self._ffn_size = ffn_size
    self._memory_size = memory_size
    self._gate_bias = gate_bias

  def __call__(self, e: jax.Array, memory: jax.Array, key_episode: jax.Array, query_episode: jax.Array,
               distance: jax.Array) -> jax.Array:
    """e [B, T, d], memory [B, M, d], key_episode [B, M+T], query_episode [B, T] (ints; a key is
    visible only from a query of the same episode), distance [T, M+T] = query pos − key pos."""
    batch, length, d = e.shape
    m, h = self._memory_size, self._num_heads
    dh = d // h
    keys_in = jnp.concatenate([jax.lax.stop_gradient(memory), e], axis=1)  # [B, L, d]
    keys_in = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True, name="attention_norm")(keys_in)
    queries_in = keys_in[:, m:]
    project = lambda name: hk.Linear(h * dh, with_bias=False, name=name)
    q = project("query")(queries_in).reshape(batch, length, h, dh)
    k = project("key")(keys_in).reshape(batch, m + length, h, dh)
    v = project("value")(keys_in).reshape(batch, m + length, h, dh)
    r = project("position")(sinusoid_table(m + 1, d)).reshape(m + 1, h, dh)
    u_bias = hk.get_parameter("u", [h, dh], e.dtype, init=jnp.zeros)
    v_bias = hk.get_parameter("v", [h, dh], e.dtype, init=jnp.zeros)

    content = jnp.einsum("bthd,blhd->bhtl", q + u_bias, k)
    position_all = jnp.einsum("bthd,rhd->bhtr", q + v_bias, r)  # [B, H, T, M+1] per distance
    index = jnp.clip(distance, 0, m)
    position = position_all[:, :, jnp.arange(length)[:, None], index]  # [B, H, T, L]
    scores = (content + position) / math.sqrt(dh)
    visible = ((distance >= 0) & (distance <= m))[None] & (key_episode[:, None, :] == query_episode[:, :, None])
    scores = jnp.where(visible[:, None], scores, _NEG_INF)
    weights = jax.nn.softmax(scores, axis=-1)
    attended = jnp.einsum("bhtl,blhd->bthd", weights, v).reshape(batch, length, h * dh)
    attended = hk.Linear(d, name="attention_output")(attended)
    y = GRUGate(self._gate_bias, name="attention_gate")(e, jax.nn.relu(attended))

    mlp_in = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True, name="mlp_norm")(y)
    mlp_out = hk.nets.MLP([self._ffn_size, d], activation=jax.nn.relu, name="mlp")(mlp_in)
    return GRUGate(self._gate_bias, name="mlp_gate")(y, jax.nn.relu(mlp_out))


class GatedTransformerXL(RecurrentCore):
  """GTrXL core: x [B, D] → linear embedding to d → `num_layers` GTrXL blocks → output [B, d].

  State: `GTrXLState(memory=(per layer [B, M, d]), valid [B, M] bool)`.
  """

  def __init__(self, hidden_size: int = HIDDEN_SIZE, num_layers: int = NUM_LAYERS, num_heads: int = NUM_HEADS,
               memory_size: int = MEMORY_SIZE, ffn_size: Optional[int] = None, gate_bias: float = GATE_BIAS,
               name: str = "gated_transformer_xl"):
    super().__init__(name=name)
    if hidden_size % num_heads or hidden_size % 2:
      raise ConfigError(f"gtrxl hidden_size {hidden_size} must be even and divisible by num_heads {num_heads}")
    if memory_size < 1 or num_layers < 1:
      raise ConfigError(f"gtrxl needs memory_size >= 1 and num_layers >= 1, got {memory_size} and {num_layers}")
    self._d = hidden_size
    self._num_layers = num_layers
    self._memory_size = memory_size
    self._embedding = hk.Linear(hidden_size, name="embedding")
    self._blocks = [GTrXLBlock(num_heads, ffn_size or 4 * hidden_size, memory_size, gate_bias, name=f"layer_{i}")
                    for i in range(num_layers)]

  def initial_state(self, batch_size: Optional[int]) -> GTrXLState:
    memory = tuple(jnp.zeros((batch_size, self._memory_size, self._d), jnp.float32)
                   for _ in range(self._num_layers))
    return GTrXLState(memory, jnp.zeros((batch_size, self._memory_size), bool))

  def _step(self, x: jax.Array, state: GTrXLState) -> Tuple[jax.Array, GTrXLState]:
    outputs, state = self.unroll(x[None], state, jnp.zeros((1, x.shape[0]), bool))
    return outputs[0], state

  def unroll(self, xs: jax.Array, state: GTrXLState, resets: jax.Array) -> Tuple[jax.Array, GTrXLState]:
    outputs, state, _ = self.unroll_with_layer_inputs(xs, state, resets)
    return outputs, state

  def unroll_with_layer_inputs(self, xs: jax.Array, state: GTrXLState,
                               resets: jax.Array) -> Tuple[jax.Array, GTrXLState, List[jax.Array]]:
    """`unroll` that also returns each layer's inputs ([T, B, d] per layer) for inspection."""
    length = xs.shape[0]
    m = self._memory_size
    e = self._embedding(jnp.swapaxes(xs, 0, 1))  # [B, T, d]
    # Episode index of each window step relative to the memory: 0 until the first reset in the
    # window, +1 at each reset. Valid memory slots are episode 0, invalid ones −1 (never visible).
    episode = jnp.cumsum(jnp.swapaxes(resets, 0, 1).astype(jnp.int32), axis=1)  # [B, T]
    key_episode = jnp.concatenate([jnp.where(state.valid, 0, -1), episode], axis=1)  # [B, M+T]
    distance = jnp.arange(length)[:, None] + m - jnp.arange(m + length)[None, :]  # [T, M+T]
    layer_inputs = []
    for block, memory in zip(self._blocks, state.memory):
      layer_inputs.append(e)
      e = block(e, memory, key_episode, episode, distance)
    new_valid = (key_episode == episode[:, -1:])[:, -m:]
    # Slots from before a reset are zeroed (as a reset state is), so the state is canonical.
    new_memory = tuple(
        jax.lax.stop_gradient(jnp.where(new_valid[..., None], jnp.concatenate([mem, inp], axis=1)[:, -m:], 0.0))
        for mem, inp in zip(state.memory, layer_inputs))
    time_major = lambda a: jnp.swapaxes(a, 0, 1)
    return time_major(e), GTrXLState(new_memory, new_valid), [time_major(a) for a in layer_inputs]
