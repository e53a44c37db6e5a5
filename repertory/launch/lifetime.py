"""Benchmark child processes that do not outlive the bench process which started them, and signals that a
training loop takes at the end of a step."""

import contextlib
import os
import signal
import sys
import threading
from typing import Dict, Iterator, Mapping, Optional

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


_pending: Optional[int] = None  # a signal `signals_at_step_boundaries` holds until the end of the step
_saving = False  # inside `checkpoint_being_written`
_after_save: Optional[int] = None  # a second signal that came while a checkpoint was being written


def _interrupt(signum: int) -> KeyboardInterrupt:
  return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def raise_if_terminated() -> None:
  """Called at the end of each loop step. Raises `Terminated` (once) when SIGTERM came but its exception was
  lost, and the signal that `signals_at_step_boundaries` held (SIGINT as KeyboardInterrupt), marked
  `at_step_boundary`: the run's state is whole, a checkpoint of it resumes exactly."""
  global _terminated, _pending
  pending, _pending = _pending, None
  if pending is not None:
    interrupt = _interrupt(pending)
    interrupt.at_step_boundary = True
    raise interrupt
  if _terminated:
    _terminated = False
    raise Terminated


@contextlib.contextmanager
def checkpoint_being_written() -> Iterator[None]:
  """Inside, a second signal (see `signals_at_step_boundaries`) waits until the checkpoint is complete."""
  global _saving, _after_save, _pending
  _saving = True
  try:
    yield
  finally:
    _saving = False
  signum, _after_save = _after_save, None
  if signum is not None:
    _pending = None
    raise _interrupt(signum)


@contextlib.contextmanager
def signals_at_step_boundaries() -> Iterator[None]:
  """Inside, SIGINT and SIGTERM are raised at the next `raise_if_terminated` instead of wherever they land,
  so that an interrupted run is checkpointed between two steps; a second signal raises at once. One that
  comes after the last step is dropped: the run finishes."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def hold(signum, frame):
    global _pending, _sigterm_seen, _after_save
    if signum == signal.SIGTERM:
      _sigterm_seen = True
    if _pending is None or (signum == signal.SIGTERM and parent_died()):
      _pending = signum
      print(f"repertory: {signal.Signals(signum).name} received; stopping after this step (send it again to stop "
            "at once: the run resumes from its last checkpoint)", file=sys.stderr, flush=True)
      return
    if _saving:
      _after_save = signum
      return
    _pending = None  # raised now instead
    raise _interrupt(signum)

  global _pending
  previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    _pending = None  # one that came after the last step: the run has finished meanwhile


def _exit_at_once(signum, frame) -> None:
  """A second SIGTERM ends the process at once, unless it is the parent-death signal repeated."""
  if parent_died():
    return
  signal.signal(signal.SIGTERM, signal.SIG_DFL)
  os.kill(os.getpid(), signal.SIGTERM)


def interrupt_on_sigterm(signum, frame) -> None:
  """A SIGTERM handler that raises KeyboardInterrupt, so that SIGTERM is cleaned up like Ctrl-C."""
  raise KeyboardInterrupt
