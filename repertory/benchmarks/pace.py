"""Where a benchmark stopped by --stop-after stands: every unfinished run's steps and pace, from the counts
its counter kept across the pieces (`counter.json`), written to `<out>/pace.csv`, and the wall-clock the
rest needs at that pace on the same workers.

A job's seconds per step are its runs' counted seconds over their steps (build and compilation included,
so the first piece reads a little slow); a job not started yet is given the mean seconds per run-step of
those measured, times its runs (one process steps its runs one after another). The jobs are then laid on
the workers longest first, as `pool.execute` starts them. Training steps only: each run's final evaluation
comes on top.
"""

import csv
import os
from typing import Any, Dict, Optional, Sequence

from repertory.benchmarks.pool import Job, longest_first
from repertory.launch.training import read_counts
from repertory.utils.timing import RUN_PHASES

PACE_FILE = "pace.csv"
FIELDS = ("run", "actor_steps", "budget", "counted_s", "steps_per_s", *(f"{p}_ms_per_step" for p in RUN_PHASES))


def _steps_left(run: Any, counted: Dict[str, Any]) -> int:
  return max(0, run.experiment.max_actor_steps - int(counted.get("actor_steps", 0)))


def _seconds_per_step(counted: Dict[str, Any]) -> Optional[float]:
  steps, seconds = int(counted.get("actor_steps", 0)), float(counted.get("elapsed_s", 0.0))
  return seconds / steps if steps > 0 and seconds > 0 else None


def seconds_left(jobs: Sequence[Job], workers: int) -> Optional[float]:
  """Wall-clock the jobs need at their measured pace on `workers`, longest first; None if none was measured."""
  measured: Dict[int, float] = {}
  for job in jobs:
    paces = [p for p in (_seconds_per_step(read_counts(run.run_dir)) for run in job.runs) if p is not None]
    if paces:
      measured[id(job)] = max(paces)
  if not measured:
    return None
  per_run_step = sum(measured[id(job)] / len(job.runs) for job in jobs if id(job) in measured) / len(measured)
  ends = [0.0] * max(1, workers)
  for job in longest_first(jobs):  # each to the first worker free, as the pool starts them
    per_step = measured.get(id(job), per_run_step * len(job.runs))
    ends[ends.index(min(ends))] += per_step * max(_steps_left(run, read_counts(run.run_dir)) for run in job.runs)
  return max(ends)


def _row(run: Any) -> Dict[str, Any]:
  counted = read_counts(run.run_dir)
  steps, per_step = int(counted.get("actor_steps", 0)), _seconds_per_step(counted)
  row = {"run": run.name, "actor_steps": steps, "budget": run.experiment.max_actor_steps,
         "counted_s": round(float(counted.get("elapsed_s", 0.0)), 1),
         "steps_per_s": round(1 / per_step, 2) if per_step else ""}
  for phase in RUN_PHASES:
    value = counted.get(f"{phase}_s")
    row[f"{phase}_ms_per_step"] = round(1e3 * float(value) / steps, 3) if steps and value is not None else ""
  return row


def write(out: str, jobs: Sequence[Job], workers: int) -> str:
  """`<out>/pace.csv` over the runs of `jobs`; one sentence on what the rest needs at this pace."""
  path = os.path.join(out, PACE_FILE)
  with open(path + ".tmp", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=FIELDS)
    writer.writeheader()
    for job in longest_first(jobs):
      for run in job.runs:
        writer.writerow(_row(run))
  os.replace(path + ".tmp", path)
  left = seconds_left(jobs, workers)
  if left is None:
    return f"no run has counted steps yet, so no pace ({path})"
  return (f"at this pace the {sum(len(job.runs) for job in jobs)} run(s) left need ~{left / 60:.1f} min of "
          f"training on {workers} worker(s), their final evaluations on top ({path})")
