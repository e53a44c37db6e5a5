"""`repertory bench control`: output files, skipping finished runs, rejecting a different --out, bad input."""

import csv
import json
import os
import signal
import sys

import pandas as pd
import pytest

from launch_helpers import stop_bench_while_it_runs
from repertory import cli
from repertory.benchmarks.control import BENCHMARK
from repertory.benchmarks.control_references import references_for
from repertory.benchmarks.runner import run_benchmark
from repertory.errors import ConfigError
from legs import one_leg


def _args(*argv):
  return cli.make_parser().parse_args(["bench", "control", *argv])


def _fake_run(run, returns, every=100):
  """A finished run as `repertory train` leaves it: config.json, metrics.csv with evaluator rows, status.json."""
  os.makedirs(run.run_dir)
  run.experiment.save(os.path.join(run.run_dir, "config.json"))
  with open(os.path.join(run.run_dir, "metrics.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["source", "time", "actor_steps", "learner_steps", "episodes", "episode_return", "loss"])
    for i, value in enumerate(returns, start=1):
      writer.writerow(["learner", i, i * every, i * every, i, "", 0.5])
      writer.writerow(["evaluator", i, i * every, i * every, i, value, ""])
  with open(os.path.join(run.run_dir, "status.json"), "w") as f:
    json.dump({"status": "finished"}, f)


QUICK = ["--env", "gym:Pendulum-v1", "--steps", "300", "--eval-every", "100", "--quick", "--seeds", "2"]


def test_help_documents_every_flag():
  parser = cli.make_parser()
  control = parser._subparsers._group_actions[0].choices["bench"]._subparsers._group_actions[0].choices["control"]
  flags = [action for action in control._actions if action.option_strings and action.dest != "help"]
  assert {"--penalty", "--quick", "--workers", "--run-timeout", "--report-only"} <= {a.option_strings[0] for a in flags}
  for action in flags:
    assert action.help, action.option_strings


def test_finished_runs_are_skipped_and_results_are_well_formed(tmp_path, capsys):
  out = str(tmp_path / "bench")
  args = _args(*QUICK, "--penalty", "gpl,clipped", "--out", out)
  plan = BENCHMARK.plan(args)
  os.makedirs(out)
  with open(os.path.join(out, "bench.json"), "w") as f:
    json.dump(plan.record, f)
  for run in plan.runs:
    offset = 0.0 if run.labels["variant"] == "sac-gpl" else -100.0
    seed = run.labels["seed"]
    _fake_run(run, [-1200 + offset, -600 + offset + seed, -200 + offset + 10 * seed])
  assert run_benchmark(args) == 0  # nothing to run: every run is finished
  assert capsys.readouterr().out.count("finished earlier, skipped") == 4

  curves = pd.read_csv(os.path.join(out, "curves.csv"))
  assert list(curves.columns) == ["variant", "seed", "step", "return"]
  assert len(curves) == 12 and set(curves["variant"]) == {"sac-gpl", "sac-clipped"}
  table = pd.read_csv(os.path.join(out, "final_scores.csv"))
  assert list(table.columns) == ["variant", "seeds", "mean", "std", "ci_low", "ci_high", "last_step"]
  gpl = table.set_index("variant").loc["sac-gpl"]
  assert gpl["seeds"] == 2 and gpl["mean"] == pytest.approx(-195.0)  # final = last 10% of steps = last eval
  assert gpl["ci_low"] <= gpl["mean"] <= gpl["ci_high"]
  comparison = pd.read_csv(os.path.join(out, "comparison.csv"))
  assert {"sac-gpl", "sac-clipped"} <= set(comparison["method"])
  assert "no published number confirmed" in " ".join(comparison["source"].astype(str))  # Pendulum: none
  with open(os.path.join(out, "curves.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with open(os.path.join(out, "provenance.json")) as f:
    record = json.load(f)
  assert {"date", "commit", "machine"} <= set(record["provenance"])
  assert record["configuration"]["steps"] == 300
  assert os.path.exists(os.path.join(out, "final_scores.md")) and os.path.exists(os.path.join(out, "comparison.md"))


def test_out_with_a_different_configuration_is_rejected(tmp_path):
  out = str(tmp_path / "bench")
  os.makedirs(out)
  with open(os.path.join(out, "bench.json"), "w") as f:
    json.dump(BENCHMARK.plan(_args(*QUICK, "--out", out)).record, f)
  with pytest.raises(ConfigError, match=r"different configuration of the control benchmark \(steps: 300 there vs 600 now\)"):
    run_benchmark(_args(*[a if a != "300" else "600" for a in QUICK], "--out", out))
  stray = tmp_path / "stray"
  stray.mkdir()
  (stray / "notes.txt").write_text("x")
  with pytest.raises(ConfigError, match="is not empty and holds no bench.json"):
    run_benchmark(_args(*QUICK, "--out", str(stray)))


def test_bad_input_is_rejected_before_any_run(tmp_path):
  with pytest.raises(ConfigError, match="sac needs continuous actions; use dqn or der for discrete ones"):
    run_benchmark(_args("--env", "gym:CartPole-v1", "--steps", "100", "--out", str(tmp_path / "a")))
  with pytest.raises(ConfigError, match="unknown sac penalty 'optimistic'"):
    run_benchmark(_args(*QUICK, "--penalty", "optimistic", "--out", str(tmp_path / "b")))
  with pytest.raises(ConfigError, match="--config expects KEY=VALUE"):
    run_benchmark(_args(*QUICK, "--config", "batch_size", "--out", str(tmp_path / "c")))
  assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


def test_published_references_are_only_confirmed_ones():
  state = references_for("dmc:cheetah-run")
  assert {(r.steps, r.mean) for r in state} == {(100_000, 616), (500_000, 795)}  # CURL Table 1, State SAC
  assert all("2004.04136" in r.source for r in state)
  assert {r.method for r in references_for("dmc:cheetah-run?pixels=84")} == {"CURL (pixels)", "SAC (pixels)"}
  assert references_for("gym:Pendulum-v1") == []


@pytest.mark.slow
@one_leg(1)
def test_reduced_bench_runs_end_to_end(tmp_path):
  """One real quick sync run per penalty (subprocesses), then a rerun that skips them."""
  out = str(tmp_path / "bench")
  args = _args("--env", "gym:Pendulum-v1", "--steps", "300", "--eval-every", "150", "--quick", "--seeds", "1",
               "--penalty", "gpl,clipped", "--workers", "2", "--out", out)
  assert run_benchmark(args) == 0
  curves = pd.read_csv(os.path.join(out, "curves.csv"))
  assert sorted(curves.groupby("variant").size().tolist()) == [2, 2]
  for variant in ("sac-gpl", "sac-clipped"):
    with open(os.path.join(out, "runs", variant, "seed_0", "config.json")) as f:
      assert ["penalty", variant.split("-")[1]] in json.load(f)["agent_overrides"]
  assert run_benchmark(args) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@one_leg(2)
def test_a_stopped_bench_resumes_its_interrupted_run(tmp_path):
  out = tmp_path / "bench"
  run_dir = out / "runs" / "sac-gpl" / "seed_0"
  flags = ["bench", "control", "--env", "gym:Pendulum-v1", "--quick", "--seeds", "1", "--steps", "100000",
           "--out", str(out), "--no-progress"]

  def the_run(bench):
    status = run_dir / "status.json"
    return status.exists() and (run_dir / "metrics.csv").exists() and json.loads(status.read_text())["pid"]

  returncode, err = stop_bench_while_it_runs(flags, the_run, signal.SIGTERM)  # a 100k-step run: still going
  assert returncode == 130 and err.strip().splitlines()[-1] == "repertory: interrupted"
  assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
  assert os.listdir(run_dir / "checkpoints")  # checkpointed on SIGTERM
  args = _args(*flags[2:])
  run = BENCHMARK.plan(args).runs[0]
  from repertory.benchmarks.runner import _job
  assert _job(BENCHMARK, str(out), run).resumes == (True,)  # the next invocation continues it
