"""Keeps a launched program's nodes alive: a thread of the driver restarts each node that dies.

Every node may be restarted, at most `max_restarts` times each; past that the run stops with one line
naming the node. A restart is logged as a `driver` row of metrics.csv with what the new node recovered
(its `recovery()`), how long it took, and the actor steps the counter lost.
"""

import threading
import time
from typing import Any, Callable, Dict, List, Optional

from repertory.launch.launchers import NodeFailure
from repertory.launch.ray_launch import give_up_waiting_for_restarts
from repertory.launch.program import Handle, Program


class Supervisor:
  """Polls `launched` every `poll_s` from its own thread and restarts dead nodes.

  `last_counts()` gives the counts the driver saw last (what a restarted counter is compared against).
  """

  def __init__(self, program: Program, launched: Any, max_restarts: int, last_counts: Callable[[], Dict[str, float]],
               poll_s: float = 0.2):
    self._program, self._launched = program, launched
    self._max_restarts, self._last_counts, self._poll_s = max_restarts, last_counts, poll_s
    self.restarts: Dict[str, int] = {}
    self.events: List[Dict[str, Any]] = []
    self.failure: Optional[BaseException] = None
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

  def start(self) -> "Supervisor":
    self._thread.start()
    return self

  def stop(self) -> None:
    self._stop.set()
    self._thread.join(timeout=30)

  def check(self) -> None:
    """Raises the failure that ended supervision (a node past its restart bound), if any."""
    if self.failure is not None:
      raise self.failure

  def actor_restarts(self) -> int:
    return sum(n for name, n in self.restarts.items() if name.startswith("actor"))

  def _watch(self) -> None:
    while not self._stop.wait(self._poll_s):
      try:
        for handle, error in self._launched.poll():
          if self._stop.is_set():
            return
          self._restart(handle, error)
      except BaseException as e:  # noqa: BLE001 — handed to the driver's thread by check()
        self.failure = e
        give_up_waiting_for_restarts()  # the driver's own calls to a dead node end now
        return

  def _restart(self, handle: Handle, error: str) -> None:
    name = Program.node_name(handle)
    died_at = time.monotonic()
    before = dict(self._last_counts())
    while True:
      tried = self.restarts.get(name, 0)
      if tried >= self._max_restarts:
        raise NodeFailure(f"node '{name}' died {tried + 1} times, more than --max-restarts {self._max_restarts} "
                          f"allows (restarted {tried} times); last error: {(error.splitlines() or ['?'])[0]}")
      self.restarts[name] = tried + 1
      try:
        self._launched.restart(handle)
        break
      except NodeFailure as e:  # the new node failed to start: counts as another death
        error = str(e)
    recovered = self._launched.resolve(handle).recovery()
    event = {"event": f"restarted {name}", "node": name, "restarts": sum(self.restarts.values()),
             "restart_s": round(time.monotonic() - died_at, 3), "recovered": recovered,
             "cause": (error.splitlines() or ["?"])[0][:200]}
    counter = self._launched.resolve(Handle("counter", 0))
    if name == "counter":
      restored = counter.restored_counts().get("actor_steps", 0)
      event["actor_steps_lost"] = int(max(0, before.get("actor_steps", 0) - restored))
    if name == "learner":  # the counter now holds the restored checkpoint's step
      event["learner_steps_lost"] = int(max(0, before.get("learner_steps", 0) - counter.get()["learner_steps"]))
    self.events.append(event)
    counter.record("driver", event)
