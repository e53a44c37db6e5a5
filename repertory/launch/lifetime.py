"""Benchmark child processes that do not outlive the bench process which started them."""

import os
import signal
from typing import Dict, Mapping

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_PID_ENV = "REPERTORY_DIE_WITH_PARENT"


def die_with_parent() -> None:
  """Asks Linux (prctl PR_SET_PDEATHSIG) to send this process SIGTERM when its parent dies, even by
  SIGKILL, so that no run keeps training unattended. Elsewhere a no-op.

  Linux ties the signal to the parent *thread* that started this process: start children from a thread
  that lives as long as they are wanted.
  """
  import ctypes
  try:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
  except (OSError, AttributeError):
    pass


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


def interrupt_on_sigterm(signum, frame) -> None:
  """A SIGTERM handler that raises KeyboardInterrupt, so that SIGTERM is cleaned up like Ctrl-C."""
  raise KeyboardInterrupt
