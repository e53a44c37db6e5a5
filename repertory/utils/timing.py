"""Where a run's time goes: wall-clock seconds per phase of its loop (acting, learning, evaluation, ...)."""

import contextlib
import time
from typing import Dict, Iterator, Sequence

# The phases a `sync` run's loop times (launch/sync.py), recorded as `<phase>_s` with its counts.
RUN_PHASES = ("policy", "environment", "learning", "evaluation", "checkpoints")


class PhaseClock:
  """Adds up the wall-clock seconds spent in named phases; `take` hands them over as `<phase>_s` counts.

      with clock.phase("learning"):
        learner.step()
      counter.increment(**clock.take())

  With JAX's asynchronous dispatch a device computation is counted in the phase that waits for its result.
  """

  def __init__(self):
    self._seconds: Dict[str, float] = {}

  def phase(self, name: str):
    """A context that adds the seconds spent in it to `name`."""
    return timed([self], name)

  def add(self, name: str, seconds: float) -> None:
    self._seconds[name] = self._seconds.get(name, 0.0) + seconds

  def take(self) -> Dict[str, float]:
    """The seconds added up since the last `take`, as {"<phase>_s": seconds}; starts again from zero."""
    taken = {f"{name}_s": seconds for name, seconds in self._seconds.items()}
    self._seconds = {}
    return taken


class NoClock:
  """A `PhaseClock` that times nothing (loops that nobody reports on)."""

  @contextlib.contextmanager
  def phase(self, name: str) -> Iterator[None]:
    del name
    yield

  def take(self) -> Dict[str, float]:
    return {}


@contextlib.contextmanager
def timed(clocks: Sequence[PhaseClock], name: str) -> Iterator[None]:
  """Adds the seconds spent in the context to phase `name` of every clock (a call several runs share)."""
  start = time.perf_counter()
  try:
    yield
  finally:
    seconds = time.perf_counter() - start
    for clock in clocks:
      clock.add(name, seconds)
