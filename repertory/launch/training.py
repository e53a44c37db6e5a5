"""One run, trained the same way by `repertory train` and by every benchmark: config.json, a heartbeat in
status.json while it trains, SIGTERM handled like Ctrl-C (checkpoint, status "interrupted"), and at the end
a learning curve and a "finished" status with the run's statistics."""

import json
import os
import resource
import signal
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from repertory.launch.lifetime import Terminated, sigterm_received, terminate_on_sigterm
from repertory.utils.files import write_json

HEARTBEAT_S = 10.0
STALE_S = 60.0  # a "running" status without a heartbeat for this long belongs to a dead driver


_status_lock = threading.Lock()  # one writer at a time: the run, its heartbeat, a watchdog


def write_status(run_dir: str, status: str, **extra) -> None:
  """status.json, replaced atomically so that a reader never sees half of it."""
  path = os.path.join(run_dir, "status.json")
  with _status_lock:
    write_json(path, {"status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}, indent=2, default=str)


def mark_stopped_if_running(run_dir: str, why: str, timeout_s: float = 5.0) -> None:
  """For a process that ends a run from outside its training loop (a watchdog, a pool that killed it): a
  status still "running" becomes "interrupted" with `why`, so no run dir claims to be running after it.
  Waits at most `timeout_s` for a status write in progress; resume starts from the last checkpoint."""
  if not _status_lock.acquire(timeout=timeout_s):
    return
  try:
    status = read_status(run_dir)
  finally:
    _status_lock.release()
  if status is not None and status.get("status") == "running":
    extra = {k: v for k, v in status.items() if k not in ("status", "time", "pid", "heartbeat")}
    write_status(run_dir, "interrupted", signal="SIGKILL", reason=why, **extra)


def read_status(run_dir: str) -> Optional[Dict[str, Any]]:
  """status.json as a dict, or None when there is none or it is unreadable."""
  try:
    with open(os.path.join(run_dir, "status.json")) as f:
      status = json.load(f)
  except (OSError, ValueError):
    return None
  return status if isinstance(status, dict) else None


def read_counts(run_dir: str) -> Dict[str, Any]:
  """The counts a run's counter last wrote (counter.json), or {} when there are none or they are unreadable."""
  try:
    with open(os.path.join(run_dir, "counter.json")) as f:
      counts = json.load(f)
  except (OSError, ValueError):
    return {}
  return counts if isinstance(counts, dict) else {}


class Heartbeat:
  """Keeps status.json "running" with this process's pid and a fresh `heartbeat` time while a run trains, so
  the next command can tell a live run from one whose driver died (`check_not_running`)."""

  def __init__(self, run_dir: str, period_s: float = HEARTBEAT_S, **extra):
    self._run_dir, self._period_s, self._extra = run_dir, period_s, extra
    self._stop = threading.Event()
    self._lock = threading.Lock()  # no beat after stop(): a late "running" would overwrite the final status
    self._beat()
    self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
    self._thread.start()

  def _beat(self) -> None:
    write_status(self._run_dir, "running", pid=os.getpid(), heartbeat=time.time(), **self._extra)

  def _loop(self) -> None:
    while not self._stop.wait(self._period_s):
      with self._lock:
        if not self._stop.is_set():
          self._beat()

  def stop(self) -> None:
    with self._lock:
      self._stop.set()
    self._thread.join(timeout=5.0)


def check_not_running(run_dir: str) -> None:
  """One line when another live process trains in `run_dir`; a run whose driver died (no heartbeat for
  STALE_S, or its pid gone) is stale and may be resumed or overwritten."""
  from repertory.errors import ConfigError
  status = read_status(run_dir)
  if status is None or status.get("status") != "running":
    return
  pid, beat = status.get("pid"), status.get("heartbeat")
  fresh = isinstance(beat, (int, float)) and time.time() - beat < STALE_S
  alive = isinstance(pid, int) and pid != os.getpid() and os.path.exists(f"/proc/{pid}")
  if fresh and alive:
    raise ConfigError(f"run dir '{run_dir}' is being trained now by process {pid}; stop it first "
                      "(or pick another --run-dir)")


COUNTS = ("actor_steps", "learner_steps", "episodes")


def check_resumable(run_dir: str) -> None:
  """One line, before anything starts, for a run that cannot be resumed as it is: a run dir nobody may
  write, an unreadable counter.json, or a latest checkpoint (or the run state saved with it) that fails its
  checksum."""
  import math
  from repertory.errors import ConfigError
  from repertory.utils.checkpointing import verify
  if not os.access(run_dir, os.W_OK | os.X_OK):
    raise ConfigError(f"run dir '{run_dir}' is not writable; make it writable to resume it, or copy it elsewhere "
                      "and resume the copy")
  path = os.path.join(run_dir, "counter.json")
  if os.path.exists(path):
    try:
      with open(path) as f:
        counts = json.load(f)
      if not all(isinstance(counts.get(k, 0), (int, float)) and math.isfinite(counts.get(k, 0)) and counts.get(k, 0) >= 0
                 for k in COUNTS):
        raise ValueError("counts must be finite numbers >= 0")
    except (OSError, ValueError, AttributeError) as e:
      raise ConfigError(f"'{path}' is not a readable step count ({type(e).__name__}); restore it, or start the run "
                        "afresh with --overwrite") from None
  step = verify(os.path.join(run_dir, "checkpoints"))
  if step is not None:
    from repertory.launch.sync_run import resume_state_path
    from repertory.utils import snapshots
    if os.path.exists(resume_state_path(run_dir, step)):
      snapshots.verify(resume_state_path(run_dir, step))


def training_rates(metrics_csv: str) -> Tuple[float, float]:
  """(learner updates/s, actor steps/s) between the first and last learner rows of metrics.csv."""
  from repertory.utils.loggers import read_metrics
  rows = read_metrics(metrics_csv, "learner")
  if len(rows) < 2:
    return float("nan"), float("nan")
  first, last = rows[0], rows[-1]
  dt = float(last["time"]) - float(first["time"])
  if dt <= 0:
    return float("nan"), float("nan")
  return ((float(last["learner_steps"]) - float(first["learner_steps"])) / dt,
          (float(last["actor_steps"]) - float(first["actor_steps"])) / dt)


def run_statistics(run_dir: str, summary: Dict[str, Any]) -> Dict[str, Any]:
  """What status.json records about a finished run besides the launcher's counts: its score (the final
  evaluation return), the last evaluation's size and spread, and its training rates."""
  from repertory.utils.loggers import read_metrics
  metrics_csv = os.path.join(run_dir, "metrics.csv")
  evaluations = read_metrics(metrics_csv, "evaluator") if os.path.exists(metrics_csv) else []
  updates_per_s, steps_per_s = training_rates(metrics_csv) if os.path.exists(metrics_csv) else (float("nan"),) * 2
  last = evaluations[-1] if evaluations else {}
  return {"score": float(summary["final_evaluation_return"]),
          "eval_episodes": int(float(last.get("episodes_evaluated") or 0)),
          "eval_return_std": float(last.get("return_std") or "nan"),
          "learner_updates_per_s": round(updates_per_s, 2), "training_steps_per_s": round(steps_per_s, 2)}


def train_run(experiment, spec, resume: bool = False, title: Optional[str] = None,
              **status_extra) -> Dict[str, Any]:
  """Trains `experiment` (validated, its replay resolved) in its existing run dir; returns the summary.

  `status_extra` goes into every status.json of the run (e.g. the cores a benchmark pinned it to).
  SIGINT and SIGTERM checkpoint a `sync` run, mark it "interrupted" and re-raise (SIGTERM as `Terminated`);
  any other failure marks it "failed" and re-raises.
  """
  return train_runs([experiment], [spec], [resume], [title], **status_extra)[0]


def train_runs(experiments: Sequence[Any], specs: Sequence[Any], resumes: Sequence[bool],
               titles: Sequence[Optional[str]], **status_extra) -> List[Dict[str, Any]]:
  """`train_run` for several `sync` runs trained together in this process (`sync.run_sync_group`: one
  vmapped update and policy call), each in its own run dir with its own files, as if it had run alone.
  Their wall-clock is the group's, plus what a resumed run's counter had counted before; a signal or failure
  marks every one of them."""
  run_dirs = [experiment.run_dir for experiment in experiments]
  earlier_s = [_counted_seconds(run_dir) if resume else 0.0 for run_dir, resume in zip(run_dirs, resumes)]
  for experiment, spec in zip(experiments, specs):
    experiment.save(os.path.join(experiment.run_dir, "config.json"), spec)
  previous = signal.signal(signal.SIGTERM, terminate_on_sigterm)  # before the first "running" status: none is left behind
  heartbeats: List[Heartbeat] = []
  start = time.time()
  try:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # a SIGTERM waits until the heartbeats can be stopped
    try:
      heartbeats = [Heartbeat(run_dir, **status_extra) for run_dir in run_dirs]
    finally:
      signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    summaries = _train(experiments, specs, resumes)
  except KeyboardInterrupt as e:  # SIGINT or SIGTERM: the runs can be resumed
    _stop(heartbeats)
    terminated = isinstance(e, Terminated) or sigterm_received()
    for run_dir in run_dirs:
      write_status(run_dir, "interrupted", signal="SIGTERM" if terminated else "SIGINT", **status_extra)
    if terminated and not isinstance(e, Terminated):
      raise Terminated from None
    raise
  except BaseException as e:
    _stop(heartbeats)
    for run_dir in run_dirs:
      write_status(run_dir, "failed", error=f"{type(e).__name__}: {e}", **status_extra)
    raise
  finally:
    signal.signal(signal.SIGTERM, previous)
  _stop(heartbeats)
  wall_clock_s = time.time() - start
  peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # before any plot is drawn
  for experiment, summary, title, earlier in zip(experiments, summaries, titles, earlier_s):
    summary["wall_clock_s"] = round(wall_clock_s + earlier, 1)
    if experiment.launcher == "sync":  # the whole run lived in this process (with the runs trained beside it)
      summary["peak_rss_mb"] = peak_rss_mb
    _finish(experiment, summary, title, status_extra)
  return summaries


def _counted_seconds(run_dir: str) -> float:
  """The seconds a run's counter had counted when it stopped (counter.json's elapsed_s; 0 without one)."""
  try:
    return max(0.0, float(read_counts(run_dir).get("elapsed_s", 0.0)))
  except (ValueError, TypeError):
    return 0.0


def _stop(heartbeats: Sequence[Heartbeat]) -> None:
  for heartbeat in heartbeats:
    heartbeat.stop()


def _train(experiments: Sequence[Any], specs: Sequence[Any], resumes: Sequence[bool]) -> List[Dict[str, Any]]:
  if len(experiments) > 1:
    from repertory.launch.sync import run_sync_group
    return run_sync_group(experiments, specs, resumes)
  experiment, spec, resume = experiments[0], specs[0], resumes[0]
  if experiment.launcher == "sync":
    from repertory.launch.sync import run_sync
    return [run_sync(experiment, spec, resume=resume)]
  from repertory.launch.distributed import run_distributed
  return [run_distributed(experiment, spec, resume=resume)]


def _finish(experiment, summary: Dict[str, Any], title: Optional[str], status_extra: Dict[str, Any]) -> None:
  """A finished run's statistics, learning curve and diagnostics plot, and its "finished" status."""
  run_dir = experiment.run_dir
  summary.update(run_statistics(run_dir, summary))
  try:
    from repertory.utils.plotting import plot_learning_curve
    summary["learning_curve"] = plot_learning_curve(
        os.path.join(run_dir, "metrics.csv"), os.path.join(run_dir, "learning_curve.png"),
        title=title or f"{experiment.agent} on {experiment.env} ({experiment.launcher})")
    from repertory.utils.diagnostics_plot import plot_diagnostics
    diagnostics_png = plot_diagnostics(os.path.join(run_dir, "metrics.csv"), os.path.join(run_dir, "diagnostics.png"),
                                       title=title or f"{experiment.agent} on {experiment.env}")
    if diagnostics_png:
      summary["diagnostics_plot"] = diagnostics_png
  except Exception as e:  # noqa: BLE001 — a plot must not lose a finished run
    summary["plot_error"] = f"{type(e).__name__}: {e}"
  write_status(run_dir, "finished", **{**summary, **status_extra})
