"""LSTM core (Hochreiter & Schmidhuber 1997) with episode resets; `hk.LSTM` underneath.

IMPALA's recurrent agent uses a 256-unit LSTM (Espeholt et al. 2018, arXiv 1802.01561, Sec. 5.1);
the default here is smaller for CPU runs. State: `hk.LSTMState(hidden [B, H], cell [B, H])`,
output: the hidden vector [B, H].
"""

from typing import Optional, Tuple

import haiku as hk
import jax

from repertory.networks.cores.base import RecurrentCore, State

HIDDEN_SIZE = 128  # arXiv 1802.01561 uses 256; smaller here for CPU runs.


class LSTMCore(RecurrentCore):
  """`hk.LSTM(hidden_size)`; unroll is a `hk.scan` that resets rows to zeros where resets[t]."""

  def __init__(self, hidden_size: int = HIDDEN_SIZE, name: str = "lstm_core"):
    super().__init__(name=name)
    self._hidden_size = hidden_size
    self._lstm = hk.LSTM(hidden_size, name="lstm")

  def initial_state(self, batch_size: Optional[int]) -> hk.LSTMState:
    return self._lstm.initial_state(batch_size)

  def _step(self, x: jax.Array, state: State) -> Tuple[jax.Array, State]:
    return self._lstm(x, state)
