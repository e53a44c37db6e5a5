"""Recurrent cores behind one interface (see `base.py`): lstm | gtrxl | ppr | lru | none.

    core = make_core("gtrxl", hidden_size=64)          # inside hk.transform
    state = core.initial_state(batch_size)
    output, state = core(x, state, reset)               # acting: x [B, D], reset [B] bool (optional)
    outputs, state = core.unroll(xs, state, resets)     # learning: xs [T, B, D], resets [T, B] bool

The `ppr` core returns `PPROutput(reaction, prediction, perception)`; the others an array.
"""

import inspect
from typing import Any

from repertory.errors import ConfigError
from repertory.networks.cores.base import FeedForwardCore, RecurrentCore, reset_state, scan_with_resets
from repertory.networks.cores.gtrxl import GatedTransformerXL, GRUGate, GTrXLState
from repertory.networks.cores.lru import LinearRecurrentUnit, LRUCore, LRUState
from repertory.networks.cores.lstm import LSTMCore
from repertory.networks.cores.ppr import PerceptionPredictionReaction, PPROutput, PPRState

_CORES = {
    "lstm": LSTMCore,
    "gtrxl": GatedTransformerXL,
    "ppr": PerceptionPredictionReaction,
    "lru": LRUCore,
    "none": FeedForwardCore,
}
CORE_NAMES = tuple(_CORES)


def check_core(name: str, **kwargs: Any) -> None:
  """ConfigError unless `name` is a core that takes `kwargs`; builds nothing."""
  if name not in _CORES:
    raise ConfigError(f"unknown core '{name}'; choose one of {', '.join(CORE_NAMES)}")
  accepted = [p for p in inspect.signature(_CORES[name].__init__).parameters if p not in ("self", "name")]
  unknown = sorted(set(kwargs) - set(accepted) - {"name"})
  if unknown:
    raise ConfigError(f"core '{name}' does not take {', '.join(unknown)}; it takes {', '.join(accepted)}")


def make_core(name: str, **kwargs: Any) -> RecurrentCore:
  """The core called `name` built with `kwargs` (e.g. hidden_size); call inside `hk.transform`."""
  check_core(name, **kwargs)
  return _CORES[name](**kwargs)


__all__ = [
    "CORE_NAMES", "FeedForwardCore", "check_core", "GRUGate", "GTrXLState", "GatedTransformerXL", "LRUCore", "LRUState",
    "LSTMCore", "LinearRecurrentUnit", "PPROutput", "PPRState", "PerceptionPredictionReaction", "RecurrentCore",
    "make_core", "reset_state", "scan_with_resets",
]
