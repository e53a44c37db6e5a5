"""The one runner behind every `repertory bench <name>`.

It checks the flags (the benchmark's `plan`), validates every run and builds the first run's environment
before anything is written, guards --out (`records.check_out`), skips runs that already finished with the
same configuration, resumes or restarts the others, trains them in the worker pool (`pool.execute`: one
process per run, pinned to a core when several run at once, each run's output in `<out>/logs/`), and
writes the benchmark's reports over the runs that finished, saying which are missing. Exit status 0 when
every run finished, 1 when one failed (the reports then cover the others), 2 for bad input, 130 when
interrupted (the runs it started are stopped and marked interrupted; the same command goes on), 75 when
--stop-after ended the invocation with runs left (rerun the same command to continue them; `<out>/pace.csv`
and one line then say each unfinished run's pace and what the rest needs at it, `pace.py`).
"""

import argparse
import os
import shutil
import sys
import time
from typing import List

from repertory.benchmarks import base, pool, records
from repertory.errors import ConfigError

EXIT_RUN_FAILED = 1
EXIT_STOPPED = 75  # EX_TEMPFAIL: runs are left, the same command continues them


def add_runner_arguments(parser: argparse.ArgumentParser, benchmark: base.Benchmark) -> None:
  default_workers = ("min(CPU cores, runs)" if benchmark.default_workers is None else benchmark.default_workers)
  parser.add_argument("--out", required=True, help=f"output folder: {benchmark.record_file}, runs/, logs/ and the reports "
                      "(reused only with the same configuration)")
  parser.add_argument("--workers", type=int, default=benchmark.default_workers,
                      help=f"runs at the same time, one process each, each pinned to its own core when > 1 "
                           f"(default: {default_workers})%(default).0s")
  parser.add_argument("--report-only", action="store_true",
                      help="run nothing: write the reports over the runs of this configuration that already finished "
                           "(marked partial when some are missing)")
  parser.add_argument("--no-progress", action="store_true", help="no progress bars")
  parser.add_argument("--run-timeout", type=float, default=None, help="seconds one run may take before it is stopped")
  parser.add_argument("--stop-after", type=float, default=None, metavar="SECONDS",
                      help="end this invocation after SECONDS: the runs checkpoint and stop, the reports cover those "
                           "finished, <out>/pace.csv gives the pace of the others, exit 75; the same command continues "
                           "the rest (long benchmarks in pieces)")


def _check_runner_flags(args: argparse.Namespace) -> None:
  if args.workers is not None and args.workers < 1:
    raise ConfigError(f"--workers must be >= 1, got {args.workers}")
  if args.run_timeout is not None and not args.run_timeout > 0:
    raise ConfigError(f"--run-timeout must be > 0 seconds, got {args.run_timeout}")
  if args.stop_after is not None and not args.stop_after > 0:
    raise ConfigError(f"--stop-after must be > 0 seconds, got {args.stop_after}")


def log_path(out: str, run: base.Run) -> str:
  """`<out>/logs/<run dir below --out (and below runs/ when there), '/' → '_'>.log`."""
  relative = os.path.relpath(run.run_dir, out)
  if relative.startswith("runs" + os.sep):
    relative = relative[len("runs" + os.sep):]
  return os.path.join(out, "logs", relative.replace(os.sep, "_") + ".log")


def _job(benchmark: base.Benchmark, out: str, run: base.Run) -> pool.Job:
  """Resumes an interrupted run of the same configuration when the benchmark allows it; else starts afresh."""
  from repertory.launch.training import check_not_running
  check_not_running(run.run_dir)
  checkpoints = os.path.join(run.run_dir, "checkpoints")
  resume = (benchmark.resume_interrupted and records.same_run(benchmark, run)
            and os.path.isdir(checkpoints) and bool(os.listdir(checkpoints)))
  if resume:
    from repertory.launch.training import check_resumable
    try:
      check_resumable(run.run_dir)
    except ConfigError as e:
      print(f"  {run.name}: cannot be resumed ({e}); starting it again", flush=True)
      resume = False
  if resume and benchmark.resume_exactly_only:
    from repertory.launch.sync_run import resume_state_path
    from repertory.utils.checkpointing import saved_steps
    if not os.path.exists(resume_state_path(run.run_dir, saved_steps(checkpoints)[-1])):
      print(f"  {run.name}: its checkpoint would not resume it exactly (no run state); starting it again", flush=True)
      resume = False
  if not resume:
    shutil.rmtree(run.run_dir, ignore_errors=True)
    os.makedirs(run.run_dir)
  return pool.Job((run,), (resume,), log_path(out, run))


def _jobs(benchmark: base.Benchmark, args: argparse.Namespace, out: str, todo: List[base.Run]) -> List[pool.Job]:
  """One job per group of runs the benchmark trains in one process (`Benchmark.groups`; alone by default)."""
  alone = {run.run_dir: _job(benchmark, out, run) for run in todo}
  jobs = []
  for group in benchmark.groups(args, todo):
    if len(group) == 1:
      jobs.append(alone[group[0].run_dir])
      continue
    path = log_path(out, group[0])
    jobs.append(pool.Job(tuple(group), tuple(alone[run.run_dir].resumes[0] for run in group),
                         f"{path[:-len('.log')]}_and_{len(group) - 1}_more.log"))
  return jobs


def run_benchmark(args: argparse.Namespace) -> int:
  from repertory.benchmarks import get_benchmark
  benchmark = get_benchmark(args.benchmark)
  _check_runner_flags(args)
  plan = benchmark.plan(args)
  for run in plan.runs:
    run.experiment.validate()
  if plan.runs:
    plan.runs[0].experiment.environment_spec()  # unknown environments, or one the agent cannot act in, fail here
  out, name = args.out, benchmark.name
  if args.report_only and not os.path.exists(os.path.join(out, benchmark.record_file)):
    raise ConfigError(f"--report-only: '{out}' holds no {benchmark.record_file}; run the benchmark there first")
  records.check_out(out, benchmark, plan.record)
  finished = [r for r in plan.runs if benchmark.reuse_finished and records.is_finished(benchmark, r)]
  todo = [r for r in plan.runs if r not in finished]
  if args.report_only:
    if plan.runs and not finished:
      raise ConfigError(f"--report-only: no run of this configuration has finished in '{out}'; run the benchmark first")
    _report(benchmark, args, plan, finished, todo, 0.0)
    return 0
  groups = len(benchmark.groups(args, todo))
  workers = args.workers or max(1, min(len(os.sched_getaffinity(0)), groups))
  for run in finished:
    print(f"  {run.name}: finished earlier, skipped", flush=True)
  together = f" in {groups} process(es)" if groups < len(todo) else ""
  print(f"{name}: {len(plan.runs)} run(s) ({len(finished)} already finished, skipped){together}, "
        f"{min(workers, max(1, groups))} worker(s), out {out}", flush=True)
  start = time.time()
  benchmark.measure(args, plan)
  os.makedirs(os.path.join(out, "logs"), exist_ok=True)
  jobs = _jobs(benchmark, args, out, todo)
  budget = max((r.experiment.max_actor_steps for r in todo), default=0)
  codes = pool.execute(jobs, workers, budget, progress=not args.no_progress, timeout_s=args.run_timeout,
                       stop_after_s=args.stop_after)
  stopped = [run for job in jobs for run in job.runs if codes.get(run.run_dir) == pool.STOPPED]
  failed = []
  for job in jobs:
    for run in job.runs:
      if run in stopped:
        then = "continues" if benchmark.resume_interrupted else "starts again"
        print(f"  {run.name}: stopped by --stop-after, {then} on the next invocation", flush=True)
        continue
      ok = codes.get(run.run_dir) == 0 and records.is_finished(benchmark, run)
      print(f"  {run.name}: {'finished' if ok else f'FAILED (exit {codes.get(run.run_dir)}); see {job.log_path}'}",
            flush=True)
      if not ok:
        failed.append(run)
  now_finished = [r for r in plan.runs if r in finished or (r in todo and r not in failed + stopped)]
  _report(benchmark, args, plan, now_finished, failed + stopped, time.time() - start)
  if failed:
    print(f"{name}: {len(failed)} run(s) did not finish; the reports cover the others "
          "(rerun the same command to retry them)", file=sys.stderr)
    return EXIT_RUN_FAILED
  if stopped:
    from repertory.benchmarks import pace
    left = [job for job in jobs if any(run in stopped for run in job.runs)]
    print(f"  pace: {pace.write(out, left, min(workers, len(left)))}", flush=True)
    print(f"{name}: stopped after --stop-after {args.stop_after:g} s with {len(stopped)} run(s) left; rerun the same "
          "command to go on", file=sys.stderr)
    return EXIT_STOPPED
  from repertory.benchmarks.pace import PACE_FILE
  if os.path.exists(os.path.join(out, PACE_FILE)):  # the pace at an earlier stop: RESULTS.md now has the whole runs
    os.remove(os.path.join(out, PACE_FILE))
  return 0


def _report(benchmark, args, plan, finished: List[base.Run], missing: List[base.Run], wall_clock_s: float) -> None:
  if plan.runs and not finished:
    return
  for path in benchmark.report(args, plan, finished, missing, wall_clock_s):
    print(f"  wrote {path}")
