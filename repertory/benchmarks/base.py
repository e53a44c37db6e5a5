"""What a benchmark is: its flags, the runs it wants, and its report over the runs that finished.

A benchmark subclasses `Benchmark` and is listed in `repertory.benchmarks.BENCHMARKS`; the shared runner
(`runner.run_benchmark`) does everything else: the --out guard, skipping finished runs, the worker pool
with core pinning, stop-on-signal, per-run status and logs, partial reports.
"""

import argparse
import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of a benchmark: trained by `launch.training.train_runs` in its own process (or in a group's)."""
  name: str  # for progress bars and messages, e.g. "Pong seed 0"
  run_dir: str
  experiment: Any  # an ExperimentConfig whose run_dir is `run_dir`
  labels: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # its columns in reports: game, seed, ...
  title: Optional[str] = None  # of its learning-curve plot


@dataclasses.dataclass(frozen=True)
class Plan:
  """A benchmark invocation: the record that must match for two invocations to share an --out, and its runs."""
  record: Dict[str, Any]
  runs: Tuple[Run, ...]
  context: Any = None  # the benchmark's own state between plan, measure and report


class Benchmark:
  """Subclass and override; the defaults suit a benchmark of independent training runs."""

  name = ""
  help = ""
  description = ""
  record_file = "bench.json"  # in --out: the configuration, written once, compared on every later invocation
  resume_interrupted = False  # an unfinished run continues from its checkpoint (True) or starts again (False)
  resume_exactly_only = False  # True: only a run whose checkpoint resumes it exactly (a sync run state) continues
  reuse_finished = True  # False: every invocation runs every run again (measurements of the moment)
  default_workers: Optional[int] = 1  # None: as many as cores and runs allow

  def add_arguments(self, parser: argparse.ArgumentParser) -> None:
    """The benchmark's own flags (the runner adds --out, --workers, --report-only, --no-progress, --run-timeout)."""

  def plan(self, args: argparse.Namespace) -> Plan:
    """Checks the flags (one-line ConfigError each) and returns the record and runs; creates nothing."""
    raise NotImplementedError

  def settings(self, record: Dict[str, Any]) -> Dict[str, Any]:
    """The part of a record that must be equal for two invocations to share an --out."""
    return record

  def saved_run_config(self, saved: Dict[str, Any]) -> Dict[str, Any]:
    """A run's stored config.json as this code would write it (for runs written by older versions)."""
    return saved

  def groups(self, args: argparse.Namespace, runs: Sequence[Run]) -> List[Tuple[Run, ...]]:
    """The runs to train together in one process (`launch.sync.run_sync_group`); each alone by default."""
    return [(run,) for run in runs]

  def measure(self, args: argparse.Namespace, plan: Plan) -> None:
    """Measurements made in the runner's process before the runs start (none by default)."""

  def report(self, args: argparse.Namespace, plan: Plan, finished: Sequence[Run], missing: Sequence[Run],
             wall_clock_s: float) -> List[str]:
    """Writes the reports over `finished` (`missing`: requested runs without a result); returns their paths."""
    raise NotImplementedError
