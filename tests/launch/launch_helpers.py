"""Shared by the launch tests: run the CLI in a subprocess."""

import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A small, fast DQN: learning starts after 200 transitions.
FAST_DQN = ["--config", "min_replay_size=200", "--config", "batch_size=32", "--config", "updates_per_actor_step=0.25"]


def run_cli(*args, timeout=300, env=None):
  """Runs `repertory` in a subprocess; returns (returncode, stdout, stderr)."""
  process = subprocess.run([sys.executable, "-m", "repertory.cli", *args], capture_output=True, text=True,
                           timeout=timeout, cwd=REPO, env=env)
  return process.returncode, process.stdout, process.stderr


def alive(pid) -> bool:
  """Whether process `pid` runs (Linux: reads /proc; a zombie counts as gone)."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except FileNotFoundError:
    return False


def children(pid, command_part=""):
  """The child processes of `pid` (over all its threads) whose command line contains `command_part` (Linux)."""
  found = []
  for task in os.listdir(f"/proc/{pid}/task"):
    try:
      with open(f"/proc/{pid}/task/{task}/children") as f:
        found += [int(child) for child in f.read().split()]
    except FileNotFoundError:  # the thread ended meanwhile
      pass
  return [child for child in found if command_part in _command_line(child)]


def _command_line(pid) -> str:
  try:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
      return f.read().replace(b"\0", b" ").decode(errors="replace")
  except FileNotFoundError:
    return ""


def wait_for(predicate, timeout_s, what):
  deadline = time.time() + timeout_s
  while not predicate():
    assert time.time() < deadline, f"timed out after {timeout_s} s waiting for {what}"
    time.sleep(0.2)


def stop_bench_while_it_runs(args, find_run, stop, timeout_s=180):
  """Starts `repertory *args`, waits until `find_run(bench_pid)` returns the pid of a run the bench started,
  sends the bench the signal `stop`, and checks that the run exits too. Returns (returncode, stderr)."""
  bench = subprocess.Popen([sys.executable, "-m", "repertory.cli", *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  try:
    wait_for(lambda: bench.poll() is not None or find_run(bench.pid), timeout_s, "the run to start")
    assert bench.poll() is None, bench.communicate()[1]
    run = find_run(bench.pid)
    assert alive(run) and run != bench.pid
    bench.send_signal(stop)
    _, err = bench.communicate(timeout=60)
  finally:
    bench.kill()
  wait_for(lambda: not alive(run), 30, f"run {run} to exit")
  return bench.returncode, err
