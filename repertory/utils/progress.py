"""A live one-line progress display (rewritten in place on a terminal, periodic lines otherwise)."""

import math
import sys
import time
from typing import Any, Dict


def _fmt(value: float, digits: int = 1) -> str:
  return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


class ProgressLine:
  def __init__(self, total_steps: int, enabled: bool = True, label: str = "", stream=None, period_s: float = 1.0):
    self._total = total_steps
    self._enabled = enabled
    self._label = label
    self._stream = stream or sys.stderr
    self._tty = hasattr(self._stream, "isatty") and self._stream.isatty()
    self._period = period_s if self._tty else 15.0
    self._last_print = 0.0
    self._last = (time.monotonic(), 0.0)
    self._rate = math.nan

  def update(self, counts: Dict[str, Any], final: bool = False) -> None:
    if not self._enabled:
      return
    now = time.monotonic()
    if not final and now - self._last_print < self._period:
      return
    steps = float(counts.get("actor_steps", 0))
    then, before = self._last
    if now - then > 0.5 and steps >= before:
      self._rate = (steps - before) / (now - then)
    self._last = (now, steps)
    self._last_print = now
    elapsed = counts.get("elapsed_s", 0.0)
    line = (f"[{self._label}] actor steps {int(steps):,}/{self._total:,} ({100 * steps / self._total:.0f}%)"
            f" | {_fmt(self._rate, 0)} steps/s | learner steps {int(counts.get('learner_steps', 0)):,}"
            f" | return {_fmt(counts.get('recent_return'))} | eval {_fmt(counts.get('evaluation_return'))}"
            f" | {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}")
    if self._tty:
      self._stream.write("\r" + line.ljust(110) + ("\n" if final else ""))
    else:
      self._stream.write(line + "\n")
    self._stream.flush()
