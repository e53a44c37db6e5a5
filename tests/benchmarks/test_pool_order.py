"""The worker pool starts the jobs with most actor steps left first: the 26-game suite, 2 runs per process."""

from repertory import cli
from repertory.benchmarks import pool, runner
from repertory.benchmarks.atari100k import BENCHMARK

WORKERS = 13  # benchmarks/atari100k_suite.sh on a 16-core host


def _suite_jobs(out):
  args = cli.make_parser().parse_args(["bench", "atari100k", "--out", str(out), "--games", "atari100k", "--seeds", "1",
                                       "--runs-per-process", "2"])
  return runner._jobs(BENCHMARK, args, str(out), list(BENCHMARK.plan(args).runs))


def _makespan(jobs, workers):
  """Run-lengths until the last job ends when each job takes one length per run and the next job waiting
  starts on the first worker free, as `pool.execute` starts them."""
  ends = [0] * workers
  for job in jobs:
    ends[ends.index(min(ends))] += len(job.runs)
  return max(ends)


def _progress(run_dir, actor_steps):
  with open(f"{run_dir}/metrics.csv", "w") as f:
    f.write("source,time,actor_steps,learner_steps\n" f"actor,1.0,{actor_steps},0\n")


def test_the_suite_starts_its_pairs_first_and_ends_in_two_run_lengths_not_three(tmp_path):
  jobs = _suite_jobs(tmp_path)
  assert [len(job.runs) for job in jobs].count(2) == 9 and len(jobs) == 17  # 13 games of 18 actions, 4 of 6, 3 of 9
  order = pool.longest_first(jobs)
  assert [len(job.runs) for job in order] == [2] * 9 + [1] * 8
  assert [job.name for job in order if len(job.runs) == 1] == [job.name for job in jobs if len(job.runs) == 1]
  assert _makespan(jobs, WORKERS) == 3 and _makespan(order, WORKERS) == 2


def test_a_continued_job_starts_after_the_fresh_ones_with_more_steps_left(tmp_path):
  jobs = _suite_jobs(tmp_path)
  first_pair = next(job for job in jobs if len(job.runs) == 2)
  for run in first_pair.runs:
    _progress(run.run_dir, 30_000)  # 140k steps left: fewer than a fresh pair's 200k, more than a single's 100k
  order = [job.name for job in pool.longest_first(jobs)]
  assert order.index(first_pair.name) == 8
  half_done_single = next(job for job in jobs if len(job.runs) == 1)
  _progress(half_done_single.runs[0].run_dir, 50_000)
  assert pool.longest_first(jobs)[-1].name == half_done_single.name
