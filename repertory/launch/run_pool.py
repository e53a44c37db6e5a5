"""Runs independent training runs in spawned worker processes, each pinned to its own core.

One progress bar per run, read from the tail of the run's `metrics.csv`. With several workers each
process is pinned to one core with single-threaded XLA: on the 2-core machine two pinned DER runs each
kept ~47 steps/s, as fast as one run using both cores (BUILD_NOTES.md). SIGTERM is handled like Ctrl-C:
the workers are stopped and KeyboardInterrupt propagates.
"""

import os
import sys
from typing import Any, Callable, Dict, List, Sequence

from repertory.launch.lifetime import die_with_parent, interrupt_on_sigterm

SINGLE_THREADED_XLA = "--xla_cpu_multi_thread_eigen=false"
POLL_S = 2.0


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


def _init_worker(next_slot, cpus: List[int]) -> None:
  """Ties this worker's life to the parent and, given a slot counter (several workers), pins it to one
  core with single-threaded XLA."""
  die_with_parent()
  if next_slot is None:
    return
  with next_slot.get_lock():
    slot = next_slot.value
    next_slot.value += 1
  os.sched_setaffinity(0, {cpus[slot % len(cpus)]})
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {SINGLE_THREADED_XLA}".strip()


def execute(specs: Sequence[Any], run_one: Callable[[Any], Dict[str, Any]], workers: int, total_steps: int,
            progress: bool, describe: Callable[[Any], str],
            failure: Callable[[Any, str], Dict[str, Any]]) -> List[Dict[str, Any]]:
  """`run_one(spec)` for every spec (each has a `run_dir`) in up to `workers` processes.

  `run_one` must be picklable (a module-level function) and returns a dict with "status" ("finished"
  or "failed") and, when finished, "score"; `failure(spec, error)` is the result of a crashed worker.
  """
  import signal
  if not specs:
    return []
  previous = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
  try:
    return _execute_in_pool(specs, run_one, workers, total_steps, progress, describe, failure)
  finally:
    signal.signal(signal.SIGTERM, previous)


def _execute_in_pool(specs, run_one, workers, total_steps, progress, describe, failure) -> List[Dict[str, Any]]:
  import concurrent.futures
  import multiprocessing
  from tqdm import tqdm
  context = multiprocessing.get_context("spawn")
  next_slot = context.Value("i", 0) if workers > 1 else None
  worker_setup = {"initializer": _init_worker, "initargs": (next_slot, sorted(os.sched_getaffinity(0)))}
  bars = {spec.run_dir: tqdm(total=total_steps, desc=describe(spec), position=i, unit="step",
                             leave=True, disable=not progress, file=sys.stderr, dynamic_ncols=True)
          for i, spec in enumerate(specs)}
  results = []
  pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context, **worker_setup)
  try:
    futures = {pool.submit(run_one, spec): spec for spec in specs}
    pending = set(futures)
    while pending:
      done, pending = concurrent.futures.wait(pending, timeout=POLL_S)
      for spec in (futures[f] for f in pending):
        bars[spec.run_dir].n = min(total_steps, last_actor_steps(spec.run_dir))
        bars[spec.run_dir].refresh()
      for future in done:
        spec = futures[future]
        try:
          result = future.result()
        except Exception as e:  # noqa: BLE001 — a crashed worker process
          result = failure(spec, f"{type(e).__name__}: {e}")
        bar = bars[spec.run_dir]
        bar.n = total_steps if result["status"] == "finished" else bar.n
        bar.set_postfix_str(f"score {result['score']:.1f}" if result["status"] == "finished" else "FAILED")
        bar.refresh()
        results.append(result)
  except BaseException:  # Ctrl-C or SIGTERM: stop the runs now instead of waiting for them to finish
    pool.shutdown(wait=False, cancel_futures=True)
    for child in multiprocessing.active_children():
      child.terminate()
    raise
  pool.shutdown()
  for bar in bars.values():
    bar.close()
  return results
