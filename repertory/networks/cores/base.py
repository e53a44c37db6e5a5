"""The recurrent-core interface shared by every core (lstm | gtrxl | ppr | lru | none).

A core is an `hk.RNNCore` with

  * `initial_state(batch_size)` → a state pytree whose every leaf has the batch on axis 0;
  * `__call__(x, state, reset=None)` → `(output, new_state)`: one acting step, x [B, D]. `reset` [B]
    bool (optional) means "this step starts a new episode": the state row is replaced by the initial
    state before x is processed;
  * `unroll(xs, state, resets)` → `(outputs, final_state)`: learning, xs time-major [T, B, D], resets
    [T, B] bool with the same meaning per step.

Properties every core has (tests/networks/cores): a sequence run whole equals the same sequence run in
two segments with the carried state; after a reset flag the outputs equal a fresh start; outputs at t
do not depend on inputs after t; `__call__` one step at a time equals `unroll`.

Cores are Haiku modules: build them (and call `make_core`) inside `hk.transform`.
"""

import abc
from typing import Any, Callable, Optional, Tuple

import haiku as hk
import jax
import jax.numpy as jnp

State = Any


def reset_state(state: State, initial_state: State, reset: jax.Array) -> State:
  """Rows b of `state` with reset[b] = True replaced by the same rows of `initial_state`.

  Every leaf has the batch on axis 0; `reset` is [B] bool. Works for any pytree (empty included).
  """
  reset = jnp.asarray(reset, bool)

  def where(s, i):
    mask = reset.reshape(reset.shape + (1,) * (s.ndim - 1))
    return jnp.where(mask, jnp.asarray(i, s.dtype), s)

  return jax.tree.map(where, state, initial_state)


def scan_with_resets(step: Callable[[jax.Array, State], Tuple[Any, State]], initial_state: State,
                     xs: jax.Array, state: State, resets: jax.Array) -> Tuple[Any, State]:
  """Sequential unroll of `step(x [B, D], state) → (output, state)` over time-major xs [T, B, D],
  resetting rows of the state to `initial_state` where resets [T, B] is True (before step t)."""

  def body(carry, inputs):
    x, reset = inputs
    carry = reset_state(carry, initial_state, reset)
    output, carry = step(x, carry)
    return carry, output

  final_state, outputs = hk.scan(body, state, (xs, resets))
  return outputs, final_state


class RecurrentCore(hk.RNNCore, abc.ABC):
  """Base class: subclasses implement `initial_state` and `_step` (one step, no reset) and may
  override `unroll` with a parallel version (GTrXL, LRU)."""

  @abc.abstractmethod
  def initial_state(self, batch_size: Optional[int]) -> State:
    """The state at an episode start; leaves [batch_size, ...]."""

  @abc.abstractmethod
  def _step(self, x: jax.Array, state: State) -> Tuple[Any, State]:
    """One step without resets: x [B, D] → (output [B, ...], new state)."""

  def __call__(self, x: jax.Array, state: State, reset: Optional[jax.Array] = None) -> Tuple[Any, State]:
    """One acting step: x [B, D], optional reset [B] bool (reset the row before processing x)."""
    if reset is not None:
      state = reset_state(state, self.initial_state(x.shape[0]), reset)
    return self._step(x, state)

  def unroll(self, xs: jax.Array, state: State, resets: jax.Array) -> Tuple[Any, State]:
    """Learning: xs [T, B, D], resets [T, B] bool → (outputs [T, B, ...], final state)."""
    return scan_with_resets(self._step, self.initial_state(xs.shape[1]), xs, state, resets)


class FeedForwardCore(RecurrentCore):
  """The `none` core: no memory, empty state `()`, so agents treat it like the recurrent cores.

  `hidden_size=None` is the identity; an int applies one ReLU linear layer of that width (so a
  feed-forward baseline has the same output width as the recurrent cores it is compared with).
  """

  def __init__(self, hidden_size: Optional[int] = None, name: str = "feed_forward_core"):
    super().__init__(name=name)
    self._hidden_size = hidden_size

  def initial_state(self, batch_size: Optional[int]) -> State:
    del batch_size
    return ()

  def _forward(self, x: jax.Array) -> jax.Array:
    if self._hidden_size is None:
      return x
    return jax.nn.relu(hk.Linear(self._hidden_size, name="linear")(x))

  def _step(self, x: jax.Array, state: State) -> Tuple[jax.Array, State]:
    return self._forward(x), state

  def unroll(self, xs: jax.Array, state: State, resets: jax.Array) -> Tuple[jax.Array, State]:
    del resets
    return self._forward(xs), state
