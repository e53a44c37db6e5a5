"""Benchmark child processes that do not outlive the bench process which started them."""

import os
import signal
from typing import Dict, Mapping

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_PID_ENV = "REPERTORY_DIE_WITH_PARENT"
_parent_pid = None  # set by die_with_parent


def die_with_parent() -> None:
  """Asks Linux (prctl PR_SET_PDEATHSIG) to send this process SIGTERM when its parent dies, even by
  SIGKILL, so that no run keeps training unattended. Elsewhere a no-op.

  Linux ties the signal to the parent *thread* that started this process: start children from a thread
  that lives as long as they are wanted.
  """
  import ctypes
  global _parent_pid
  _parent_pid = os.getppid()
  try:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
  except (OSError, AttributeError):
    pass


def parent_died() -> bool:
  """Whether the parent that `die_with_parent` watches is gone. Linux sends the parent-death signal again
  each time one of a dying parent's threads exits, so a handler can tell those repeats from a second
  SIGTERM meant to end the process at once."""
  return _parent_pid is not None and os.getppid() != _parent_pid


def child_environment(env: Mapping[str, str]) -> Dict[str, str]:
  """`env` for a `repertory` subprocess that should call `die_with_parent` when it starts (see
  `die_with_parent_if_asked`). Unlike a subprocess preexec_fn this needs no fork of a threaded process."""
  return {**env, PARENT_PID_ENV: str(os.getpid())}


def die_with_parent_if_asked() -> None:
  """Called first by the CLI: applies `die_with_parent` when the environment asks for it, and stops at once
  if the parent died before that (the signal would never come)."""
  parent = os.environ.pop(PARENT_PID_ENV, None)  # popped: this process's own children are not meant
  if parent is None:
    return
  die_with_parent()
  if os.getppid() != int(parent):
    signal.raise_signal(signal.SIGTERM)


class Terminated(KeyboardInterrupt):
  """SIGTERM, raised like Ctrl-C so that a run is checkpointed and marked interrupted; exit status 143."""


_terminated = False  # a SIGTERM whose exception may not have been seen yet
_sigterm_seen = False


def terminate_on_sigterm(signum, frame) -> None:
  """A SIGTERM handler for a training run: raises `Terminated`. Python drops an exception raised while it
  runs a garbage-collection callback, so the training loops also call `raise_if_terminated` each step."""
  global _terminated, _sigterm_seen
  _terminated = _sigterm_seen = True
  signal.signal(signal.SIGTERM, _exit_at_once)
  raise Terminated


def sigterm_received() -> bool:
  """Whether `terminate_on_sigterm` ran in this process (a library may turn its `Terminated` into a plain
  KeyboardInterrupt, as Ray's `get` does)."""
  return _sigterm_seen


def raise_if_terminated() -> None:
  """Raises `Terminated` (once) when SIGTERM came but its exception was lost."""
  global _terminated
  if _terminated:
    _terminated = False
    raise Terminated


def _exit_at_once(signum, frame) -> None:
  """A second SIGTERM ends the process at once, unless it is the parent-death signal repeated."""
  if parent_died():
    return
  signal.signal(signal.SIGTERM, signal.SIG_DFL)
  os.kill(os.getpid(), signal.SIGTERM)


def interrupt_on_sigterm(signum, frame) -> None:
  """A SIGTERM handler that raises KeyboardInterrupt, so that SIGTERM is cleaned up like Ctrl-C."""
  raise KeyboardInterrupt
