"""Kills what a local Ray instance leaves behind when its driver is killed outright (SIGKILL, OOM).

Ray's raylet and GCS die with the driver, but its agents (`ray::DashboardAgent`, `ray::RuntimeEnvAgent`)
were measured alive, adopted by init, more than a minute after a SIGKILL of the driver. `watch(pid)` starts
a small process in its own session that notes the driver's Ray descendants every `poll_s` and, once the driver
is gone, SIGKILLs those still alive (matched by pid and start time, so a reused pid is never hit). After a
clean `ray.shutdown()` there is nothing left to kill and it just exits.

Run as `python -m repertory.launch.ray_reaper PID START_TIME`.
"""

import os
import signal
import subprocess
import sys
import time
from typing import Dict, Tuple

import psutil

POLL_S = 0.5


def watch(pid: int) -> subprocess.Popen:
  """Starts the reaper of process `pid` (normally the driver, `os.getpid()`)."""
  created = psutil.Process(pid).create_time()
  return subprocess.Popen([sys.executable, "-m", "repertory.launch.ray_reaper", str(pid), repr(created)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True, close_fds=True)


def _alive(pid: int, created: float) -> bool:
  try:
    process = psutil.Process(pid)
    return process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE
  except psutil.Error:
    return False


RAY_PROCESS = ("raylet", "gcs_server", "ray::", "/ray/")


def _ray_descendants(pid: int) -> Dict[int, float]:
  try:
    children = psutil.Process(pid).children(recursive=True)
  except psutil.Error:
    return {}
  found = {}
  for child in children:
    try:
      if child.pid != os.getpid() and any(m in " ".join(child.cmdline()) for m in RAY_PROCESS):
        found[child.pid] = child.create_time()
    except psutil.Error:
      continue
  return found


def reap(pid: int, created: float, poll_s: float = POLL_S) -> Tuple[int, ...]:
  """Waits for process `pid` to end, then SIGKILLs the Ray processes it started that outlived it; their pids."""
  seen: Dict[int, float] = {}
  while _alive(pid, created):
    seen.update(_ray_descendants(pid))
    seen = {p: t for p, t in seen.items() if _alive(p, t)}  # an agent adopted by init stays in
    time.sleep(poll_s)
  killed = []
  for child, child_created in seen.items():
    if _alive(child, child_created):
      try:
        os.kill(child, signal.SIGKILL)
        killed.append(child)
      except OSError:
        pass
  return tuple(killed)


if __name__ == "__main__":
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C of the driver's terminal is the driver's to handle
  reap(int(sys.argv[1]), float(sys.argv[2]))
