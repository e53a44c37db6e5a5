"""Launch types for a `Program`: `thread` (one process, a thread per node) here, `ray` (a process per node) in
`ray_launch.py`.

Both give a launched program: resolve handles, poll for dead nodes, restart one, stop all.
"""

import threading
import traceback
from typing import Any, Dict, List, Tuple

from repertory.errors import ConfigError
from repertory.launch.program import Handle, Program


class NodeFailure(RuntimeError):
  """A node died or could not start; the message names it."""


class ThreadLaunch:
  """Each node's service lives in this process; `run()` goes in its own daemon thread."""

  def __init__(self, program: Program, timeout_s: float = 120.0):
    self._program = program
    self._timeout_s = timeout_s
    self.services: Dict[Handle, Any] = {}
    self._threads: Dict[Handle, threading.Thread] = {}
    self._errors: Dict[Handle, str] = {}
    self._finished: Dict[Handle, bool] = {}
    for handle in program.handles():
      self._start(handle)

  def _start(self, handle: Handle, restarted: bool = False) -> None:
    args, kwargs = self._program.node(handle).with_resolved(self.resolve, restarted)
    try:
      service = self._program.node(handle).service_class(*args, **kwargs)
    except ConfigError:
      raise
    except Exception as e:
      raise NodeFailure(f"node '{Program.node_name(handle)}' failed to start: {type(e).__name__}: {e}") from e
    self.services[handle] = service
    self._finished[handle] = False

    def target():
      try:
        service.run()
      except Exception as e:  # reported by poll()
        self._errors[handle] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
      finally:
        self._finished[handle] = True

    thread = threading.Thread(target=target, name=Program.node_name(handle), daemon=True)
    self._threads[handle] = thread
    thread.start()

  def resolve(self, handle: Handle) -> "LocalProxy":
    return LocalProxy(self.services, handle)

  def poll(self) -> List[Tuple[Handle, str]]:
    return [(h, self._errors.pop(h)) for h in list(self._errors)]

  def finished(self, handle: Handle) -> bool:
    return self._finished[handle]

  def restart(self, handle: Handle) -> None:
    try:
      self.services[handle].stop()
    except Exception:  # noqa: BLE001 — what is left of a failed service
      pass
    self._start(handle, restarted=True)

  def stop(self) -> None:
    for handle in reversed(self._program.handles()):
      try:
        self.services[handle].stop()
      except Exception:
        pass
    for thread in self._threads.values():
      thread.join(timeout=self._timeout_s / 4)

  def shutdown(self) -> None:
    pass


class LocalProxy:
  """A node's service under the thread launcher, looked up at each call, so a restarted node is reached
  through the handles the other nodes already hold."""

  def __init__(self, services: Dict[Handle, Any], handle: Handle):
    self.__dict__.update(_services=services, _handle=handle)

  def __getattr__(self, name: str):
    return getattr(self._services[self._handle], name)
