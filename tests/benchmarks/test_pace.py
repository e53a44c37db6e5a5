"""The pace of a benchmark stopped by --stop-after: its runs' steps and seconds per step from their counters,
and what the rest needs on the workers, against hand computations on the 26-game suite's jobs."""

import csv
import json

import pytest

from repertory import cli
from repertory.benchmarks import pace, runner
from repertory.benchmarks.atari100k import BENCHMARK


def _suite_jobs(out):
  args = cli.make_parser().parse_args(["bench", "atari100k", "--out", str(out), "--games", "atari100k", "--seeds", "1",
                                       "--runs-per-process", "2", "--steps", "1000"])
  return runner._jobs(BENCHMARK, args, str(out), list(BENCHMARK.plan(args).runs))


def _counted(run, **counts):
  """What a run stopped at `actor_steps` leaves: its counts, and a metrics row at that step (the pool's order)."""
  with open(f"{run.run_dir}/counter.json", "w") as f:
    json.dump(counts, f)
  with open(f"{run.run_dir}/metrics.csv", "w") as f:
    f.write(f"source,time,actor_steps\nactor,1.0,{counts['actor_steps']}\n")


def test_nothing_counted_gives_no_pace(tmp_path):
  jobs = _suite_jobs(tmp_path)
  assert pace.seconds_left(jobs, 13) is None
  assert pace.write(str(tmp_path), jobs, 13).startswith("no run has counted steps yet")


def test_the_rest_is_laid_on_the_workers_longest_first_at_the_measured_pace(tmp_path):
  jobs = _suite_jobs(tmp_path)
  pairs = [job for job in jobs if len(job.runs) == 2]
  singles = [job for job in jobs if len(job.runs) == 1]
  for run in pairs[0].runs:  # a pair 400 of 1,000 steps in, at 20 ms per step of the two: 10 ms per run-step
    _counted(run, actor_steps=400, elapsed_s=8.0, policy_s=1.0, learning_s=6.0)
  # One worker: the measured pair's 600 steps x 20 ms, 8 more pairs of 1,000 x 20 ms, 8 singles of 1,000 x 10 ms.
  assert pace.seconds_left(jobs, 1) == pytest.approx(12 + 8 * 20 + 8 * 10)
  # 17 workers, one job each: the longest is a fresh pair, 20 s.
  assert pace.seconds_left(jobs, 17) == pytest.approx(20)
  _counted(singles[0].runs[0], actor_steps=100, elapsed_s=4.0)  # a slow single: 40 ms per step
  per_run_step = (0.020 / 2 + 0.040) / 2  # what a job not started is given: the mean of the measured, per run
  # 2 workers, in the pool's order by steps left: 8 fresh pairs (2,000), the measured pair (1,200), 7 fresh
  # singles (1,000), the slow single (900)
  ends = [0.0, 0.0]
  for need in [2 * per_run_step * 1000] * 8 + [0.020 * 600] + [per_run_step * 1000] * 7 + [0.040 * 900]:
    ends[ends.index(min(ends))] += need
  assert pace.seconds_left(jobs, 2) == pytest.approx(max(ends))


def test_pace_csv_has_a_row_per_run_left_in_milliseconds_per_step(tmp_path):
  jobs = _suite_jobs(tmp_path)
  pair = next(job for job in jobs if len(job.runs) == 2)
  _counted(pair.runs[0], actor_steps=400, elapsed_s=8.0, policy_s=1.0, environment_s=0.5, learning_s=6.0)
  line = pace.write(str(tmp_path), [pair], 1)
  # The job ends with its last run: the second has not counted a step, 1,000 x 20 ms.
  assert line.startswith("at this pace the 2 run(s) left need ~0.3 min of training on 1 worker(s)")
  with open(tmp_path / "pace.csv") as f:
    rows = list(csv.DictReader(f))
  assert [row["run"] for row in rows] == [run.name for run in pair.runs]
  assert rows[0]["actor_steps"] == "400" and rows[0]["budget"] == "1000" and float(rows[0]["steps_per_s"]) == 50
  assert float(rows[0]["policy_ms_per_step"]) == 2.5 and float(rows[0]["learning_ms_per_step"]) == 15
  assert rows[0]["evaluation_ms_per_step"] == ""  # not counted yet
  assert rows[1]["actor_steps"] == "0" and rows[1]["steps_per_s"] == ""  # its counter has not written yet
