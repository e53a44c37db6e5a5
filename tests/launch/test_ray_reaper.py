"""The reaper of a local Ray instance: what outlives a SIGKILLed driver is killed, nothing else."""

import os
import signal
import subprocess
import sys
import time

import psutil

from repertory.launch import ray_reaper

# A "driver" that starts a Ray-looking process in its own session (so it outlives the driver, as Ray's
# agents do) and an unrelated one, prints their pids and waits.
DRIVER = """
import subprocess, sys, time
sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
agent = subprocess.Popen(sleeper + ["/site-packages/ray/dashboard/agent.py"], start_new_session=True)
other = subprocess.Popen(sleeper + ["unrelated"], start_new_session=True)
print(agent.pid, other.pid, flush=True)
time.sleep(120)
"""


def _wait_gone(pid, timeout_s):
  deadline = time.time() + timeout_s
  while time.time() < deadline:
    if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
      return True
    time.sleep(0.1)
  return False


def test_a_killed_drivers_ray_processes_are_killed_and_others_left_alone():
  driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True)
  agent, other = map(int, driver.stdout.readline().split())
  reaper = ray_reaper.watch(driver.pid)
  try:
    time.sleep(3 * ray_reaper.POLL_S)  # it has seen the agent
    assert reaper.poll() is None
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=10)
    assert _wait_gone(agent, 10), "the driver's Ray process outlived it"
    assert reaper.wait(timeout=10) == 0
    assert psutil.Process(other).status() != psutil.STATUS_ZOMBIE  # not a Ray process: left alone
  finally:
    for pid in (agent, other):
      try:
        os.kill(pid, signal.SIGKILL)
      except OSError:
        pass
    if reaper.poll() is None:
      reaper.kill()


def test_the_reaper_ends_with_its_driver_and_kills_nothing_after_a_clean_exit():
  driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
  reaper = ray_reaper.watch(driver.pid)
  driver.wait(timeout=10)
  assert reaper.wait(timeout=10) == 0


def test_reap_ignores_a_reused_pid():
  # a pid whose start time is not the one given is not the watched process: reap returns at once
  started = time.time()
  assert ray_reaper.reap(os.getpid(), psutil.Process(os.getpid()).create_time() + 1.0, poll_s=0.05) == ()
  assert time.time() - started < 5
