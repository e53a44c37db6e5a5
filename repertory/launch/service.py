"""The base of every node's service: a run loop that ends on `stop()`, and liveness calls."""

import os
import sys
import threading


def in_ray_worker() -> bool:
  ray = sys.modules.get("ray")
  return ray is not None and ray.is_initialized()


def node_ip() -> str:
  if in_ray_worker():
    import ray
    return ray.util.get_node_ip_address()
  return "localhost"


class Service:
  def __init__(self):
    self._stop_event = threading.Event()

  def run(self) -> str:
    self._stop_event.wait()
    return "stopped"

  def stop(self) -> None:
    self._stop_event.set()

  def stopping(self) -> bool:
    return self._stop_event.is_set()

  def ping(self) -> bool:
    return True

  def recovery(self) -> str:
    """What this node took over from the one before it, for the driver's log of a restart."""
    return "nothing: a fresh start"

  def pid(self) -> int:
    return os.getpid()

  def host(self) -> str:
    """The address of the host this service runs on ("localhost" outside Ray)."""
    return node_ip()

  def node_id(self) -> str:
    """The Ray node this service runs on ("local" outside Ray)."""
    if in_ray_worker():
      import ray
      return ray.get_runtime_context().get_node_id()
    return "local"
