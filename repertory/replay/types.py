"""Types shared by the replay backends."""

from typing import Any, NamedTuple

import numpy as np


class ReplayBatch(NamedTuple):
  """A sampled batch: item keys (for priority updates), sampling probabilities, table sizes, data."""

  keys: np.ndarray
  probabilities: np.ndarray
  table_size: np.ndarray
  data: Any


def importance_weights(batch: ReplayBatch, exponent: float, normalise: bool = True) -> np.ndarray:
  """Prioritised-replay importance weights (N·P)^−β, normalised by their maximum (Schaul et al. 2016, §3.4);
  `normalise=False` leaves that to the caller (a learner whose batch is split over processes)."""
  weights = (batch.table_size.astype(np.float64) * batch.probabilities) ** (-exponent)
  return (weights / weights.max() if normalise else weights).astype(np.float32)
