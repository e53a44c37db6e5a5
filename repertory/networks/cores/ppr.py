"""Perception-Prediction-Reaction core (PPR; Stooke et al. 2020, arXiv 2006.15223).

From the paper's abstract: a slow-ticking recurrent core plus three fast-ticking cores wired for an
information asymmetry — the *reaction* core sees new observations and the slow core and gives the
agent's policy; the *perception* core sees only short-term observations and informs the slow core;
the *prediction* core sees only long-term memory (the slow core). An auxiliary loss regularises the
policies drawn from the three cores against each other (`repertory.losses.ppr_aux`).

Only the abstract could be read (the paper body was not available to us), so the wiring below is our
reading of it; every choice is ours unless it restates the abstract:

  * all four cores are LSTMs (the paper's baseline is an LSTM agent);
  * tick phase p ∈ {0, …, τ−1} lives in the state, p = 0 at an episode start, and the slow core ticks
    when p = 0 (at episode starts and every τ steps after), its state and output held in between;
  * perception: LSTM(x_t); its state is reset to zeros right after each slow tick, so it only ever
    sees the observations since the last tick (≤ τ of them: "short-term observations");
  * slow: at a tick, LSTM(perception output of this step) — it summarises the perception window
    that ends at the tick;
  * reaction: LSTM([x_t, slow output]) → behaviour policy and value;
  * prediction: LSTM(slow output) only — so between ticks its output does not depend on any
    observation after the last tick.

τ (`slow_period`) defaults to 4: our choice for short CPU unrolls, not the paper's value (unread).
All cores have width `hidden_size` so one shared policy head can read every part of `PPROutput`.

State: `PPRState(perception, slow, reaction, prediction: hk.LSTMState, phase [B] int32)`.
Output: `PPROutput(reaction, prediction, perception)`, each [B, hidden_size] ([T, B, H] unrolled).
"""

from typing import NamedTuple, Optional, Tuple

import haiku as hk
import jax
import jax.numpy as jnp

from repertory.errors import ConfigError
from repertory.networks.cores.base import RecurrentCore, reset_state

HIDDEN_SIZE = 128
SLOW_PERIOD = 4  # τ: our choice (the paper's value was not read; see the module docstring).


class PPROutput(NamedTuple):
  reaction: jax.Array  # [..., H] behaviour policy and value features
  prediction: jax.Array  # [..., H] features from the slow core only
  perception: jax.Array  # [..., H] features from the observations since the last slow tick


class PPRState(NamedTuple):
  perception: hk.LSTMState
  slow: hk.LSTMState
  reaction: hk.LSTMState
  prediction: hk.LSTMState
  phase: jax.Array  # [B] int32: steps since the last slow tick; the slow core ticks when 0


class PerceptionPredictionReaction(RecurrentCore):
  """PPR core: x [B, D] → `PPROutput` of three [B, hidden_size] feature arrays."""

  def __init__(self, hidden_size: int = HIDDEN_SIZE, slow_period: int = SLOW_PERIOD,
               slow_size: Optional[int] = None, name: str = "perception_prediction_reaction"):
    super().__init__(name=name)
    if slow_period < 1:
      raise ConfigError(f"ppr slow_period must be >= 1, got {slow_period}")
    self._period = slow_period
    self._perception = hk.LSTM(hidden_size, name="perception")
    self._slow = hk.LSTM(slow_size or hidden_size, name="slow")
    self._reaction = hk.LSTM(hidden_size, name="reaction")
    self._prediction = hk.LSTM(hidden_size, name="prediction")

  @property
  def slow_period(self) -> int:
    return self._period

  def initial_state(self, batch_size: Optional[int]) -> PPRState:
    return PPRState(self._perception.initial_state(batch_size), self._slow.initial_state(batch_size),
                    self._reaction.initial_state(batch_size), self._prediction.initial_state(batch_size),
                    jnp.zeros((batch_size,), jnp.int32))

  def _step(self, x: jax.Array, state: PPRState) -> Tuple[PPROutput, PPRState]:
    batch = x.shape[0]
    tick = state.phase == 0
    perception_out, perception_state = self._perception(x, state.perception)
    _, slow_ticked = self._slow(perception_out, state.slow)
    slow_state = reset_state(state.slow, slow_ticked, tick)  # take the ticked rows, hold the others
    slow_out = slow_state.hidden
    perception_state = reset_state(perception_state, self._perception.initial_state(batch), tick)
    reaction_out, reaction_state = self._reaction(jnp.concatenate([x, slow_out], axis=-1), state.reaction)
    prediction_out, prediction_state = self._prediction(slow_out, state.prediction)
    phase = (state.phase + 1) % self._period
    new_state = PPRState(perception_state, slow_state, reaction_state, prediction_state, phase.astype(jnp.int32))
    return PPROutput(reaction_out, prediction_out, perception_out), new_state
