"""Trains a benchmark's runs in spawned processes, one per run, up to `workers` at a time.

With several workers each run is pinned to a free core with single-threaded XLA: on the 2-core machine
two pinned DER runs each kept ~47 steps/s, as fast as one run using both cores (BUILD_NOTES.md). The jobs
with most steps left start first (`longest_first`). One progress bar per run, read from the tail of its
`metrics.csv`; each run's console output goes to its log file. A run that takes longer than `timeout_s` is
stopped, and so is every run after `stop_after_s` (the benchmark in pieces: each checkpoints, the next
invocation continues them). SIGTERM is handled like Ctrl-C: every running run gets SIGTERM (it checkpoints
and marks itself interrupted), gets `GRACE_S` to exit, is killed after, and KeyboardInterrupt propagates.
A run whose pool dies by SIGKILL gets SIGTERM from Linux (`die_with_parent`).
"""

import dataclasses
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from repertory.launch.lifetime import die_with_parent, interrupt_on_sigterm, parent_died

SINGLE_THREADED_XLA = "--xla_cpu_multi_thread_eigen=false"
POLL_S = 1.0
GRACE_S = 30.0
STOPPED = -1  # the exit code recorded for a run that `stop_after_s` stopped or never started


@dataclasses.dataclass(frozen=True)
class Job:
  """Runs trained together in one process: one run, or several sharing a vmapped update (--runs-per-process)."""
  runs: Tuple[Any, ...]  # base.Run
  resumes: Tuple[bool, ...]
  log_path: str

  @property
  def name(self) -> str:
    return self.runs[0].name if len(self.runs) == 1 else f"{self.runs[0].name} and {len(self.runs) - 1} more"


def last_actor_steps(run_dir: str) -> int:
  """The actor-step column of the last row of `<run_dir>/metrics.csv` (0 before the first row)."""
  path = os.path.join(run_dir, "metrics.csv")
  try:
    with open(path, "rb") as f:
      f.seek(0, os.SEEK_END)
      f.seek(max(0, f.tell() - 4096))
      lines = f.read().decode(errors="ignore").strip().splitlines()
    return int(float(lines[-1].split(",")[2])) if len(lines) > 1 else 0
  except (OSError, ValueError, IndexError):
    return 0


def longest_first(jobs: Sequence[Job]) -> List[Job]:
  """The order the jobs start in: most actor steps left first (of their runs together: a job steps its runs one
  after another), equal ones in the order given. With more jobs than workers this is Graham's longest-processing-
  time rule (SIAM J. Appl. Math. 17(2), 1969): the 26-game suite at 2 runs per process is 17 jobs, 9 of them
  pairs; started in plan order on 13 workers two pairs wait for the singles and end at ~3 run-lengths, longest
  first at ~2."""
  def steps_left(job: Job) -> int:
    return sum(max(0, run.experiment.max_actor_steps - last_actor_steps(run.run_dir)) for run in job.runs)
  return sorted(jobs, key=steps_left, reverse=True)


def _exit_when_orphaned(run_dirs: Sequence[str], grace_s: float = GRACE_S) -> None:
  """A thread of the worker: `grace_s` after the pool died, ends the worker even if it is still saving,
  leaving its runs' status "interrupted" rather than "running"."""
  from repertory.launch.training import mark_stopped_if_running
  while not parent_died():
    time.sleep(1.0)
  time.sleep(grace_s)
  for run_dir in run_dirs:
    mark_stopped_if_running(run_dir, f"the bench process died and the run did not stop within {grace_s:g} s")
  os._exit(137)


def _train(job: Job, core: Optional[int]) -> None:
  """A worker process: pinned (given a core), its output in the job's log, its runs trained as `train` does."""
  import threading
  die_with_parent()
  run_dirs = [run.run_dir for run in job.runs]
  threading.Thread(target=_exit_when_orphaned, args=(run_dirs,), name="orphan-watch", daemon=True).start()
  if core is not None:
    os.sched_setaffinity(0, {core})
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {SINGLE_THREADED_XLA}".strip()
  log = os.open(job.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
  os.dup2(log, 1)
  os.dup2(log, 2)
  import traceback
  from repertory.launch.training import read_status, train_runs, write_status
  from repertory.utils.provenance import commit
  extra = {"commit": commit(), "cpus": sorted(os.sched_getaffinity(0)), "xla_flags": os.environ.get("XLA_FLAGS", "")}
  try:
    experiments = [run.experiment.validate().with_resolved_replay() for run in job.runs]
    train_runs(experiments, [e.environment_spec() for e in experiments], job.resumes, [run.title for run in job.runs],
               **extra)
  except KeyboardInterrupt:  # SIGTERM / SIGINT: train_runs checkpointed the runs and marked them interrupted
    sys.exit(130)
  except BaseException as e:  # noqa: BLE001 — recorded in the runs' status and log, reported by the pool
    traceback.print_exc()
    for run_dir in run_dirs:
      if (read_status(run_dir) or {}).get("status") != "failed":
        write_status(run_dir, "failed", error=f"{type(e).__name__}: {e}", **extra)
    sys.exit(1)


def execute(jobs: Sequence[Job], workers: int, total_steps: int, progress: bool,
            timeout_s: Optional[float] = None, stop_after_s: Optional[float] = None) -> Dict[str, int]:
  """Trains every job; returns run_dir → exit code of its job's process (0: finished). After `stop_after_s`
  the running jobs are stopped as on SIGTERM (they checkpoint) and no other starts: their code is STOPPED."""
  import signal
  if not jobs:
    return {}
  previous = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
  try:
    return _execute(jobs, workers, total_steps, progress, timeout_s, stop_after_s)
  finally:
    signal.signal(signal.SIGTERM, previous)


def _execute(jobs, workers, total_steps, progress, timeout_s, stop_after_s) -> Dict[str, int]:
  import multiprocessing
  from tqdm import tqdm
  context = multiprocessing.get_context("spawn")
  cores = sorted(os.sched_getaffinity(0))
  pin = workers > 1
  runs = [run for job in jobs for run in job.runs]
  bars = {run.run_dir: tqdm(total=total_steps, desc=run.name, position=i, unit="step", leave=True,
                            disable=not progress, file=sys.stderr, dynamic_ncols=True)
          for i, run in enumerate(runs)}
  waiting: List[Job] = longest_first(jobs)
  running: Dict[int, Any] = {}  # id(job) → (job, process, core, started)
  codes: Dict[str, int] = {}
  stop_at = None if stop_after_s is None else time.monotonic() + stop_after_s
  try:
    while waiting or running:
      if stop_at is not None and time.monotonic() >= stop_at:
        _stop([(job, process) for job, process, _, _ in running.values()])
        stopped = [(job, process.exitcode) for job, process, _, _ in running.values()] + [(j, None) for j in waiting]
        for job, code in stopped:
          for run in job.runs:
            codes[run.run_dir] = 0 if code == 0 else STOPPED  # 0: it finished just before the stop
            bars[run.run_dir].set_postfix_str("finished" if code == 0 else "stopped: rerun to continue")
        break
      while waiting and len(running) < workers:
        job = waiting.pop(0)
        busy = {core for _, _, core, _ in running.values()}
        core = next((c for c in cores if c not in busy), cores[0]) if pin else None
        process = context.Process(target=_train, args=(job, core), name=f"run {job.name}")
        process.start()
        running[id(job)] = (job, process, core, time.monotonic())
      time.sleep(POLL_S)
      for key, (job, process, _, started) in list(running.items()):
        timed_out = process.exitcode is None and timeout_s is not None and time.monotonic() - started > timeout_s
        if timed_out:
          _stop([(job, process)])
          with open(job.log_path, "a") as log:
            log.write(f"\nbench: run stopped after --run-timeout {timeout_s:g} s\n")
        for run in job.runs:
          bar = bars[run.run_dir]
          if process.exitcode is None:
            bar.n = min(total_steps, last_actor_steps(run.run_dir))
          else:
            codes[run.run_dir] = code = 124 if timed_out else process.exitcode
            bar.n = total_steps if code == 0 else bar.n
            bar.set_postfix_str("finished" if code == 0 else f"FAILED (exit {code})")
          bar.refresh()
        if process.exitcode is not None:
          del running[key]
  except BaseException:  # Ctrl-C or SIGTERM: stop the runs now instead of waiting for them to finish
    _stop([(job, process) for job, process, _, _ in running.values()])
    raise
  finally:
    for bar in bars.values():
      bar.close()
  return codes


def _stop(processes: Sequence[Tuple[Job, Any]], grace_s: float = GRACE_S) -> None:
  """SIGTERM to each job's process (it checkpoints and marks its runs interrupted), SIGKILL after `grace_s`
  (their status is then marked interrupted here)."""
  from repertory.launch.training import mark_stopped_if_running
  for _, process in processes:
    if process.exitcode is None:
      process.terminate()
  deadline = time.monotonic() + grace_s
  for job, process in processes:
    process.join(max(0.0, deadline - time.monotonic()))
    if process.exitcode is None:
      process.kill()
      process.join(5.0)
      for run in job.runs:
        mark_stopped_if_running(run.run_dir, f"killed {grace_s:g} s after SIGTERM, before it stopped")
