"""`repertory bench control`: output files, skipping finished runs, rejecting a different --out, bad input."""

import argparse
import csv
import json
import os
import signal
import sys

import pandas as pd
import pytest

from launch_helpers import children, stop_bench_while_it_runs
from repertory.errors import ConfigError
from repertory.experiments.control import references_for
from repertory.launch import bench_control


def _args(*argv):
  parser = argparse.ArgumentParser()
  bench_control.add_parser(parser.add_subparsers(dest="benchmark"))
  return parser.parse_args(["control", *argv])


def _fake_run(run_dir, returns, every=100):
  """A finished run as `repertory train` leaves it: metrics.csv with evaluator rows, status.json."""
  os.makedirs(run_dir)
  with open(os.path.join(run_dir, "metrics.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["source", "time", "actor_steps", "learner_steps", "episodes", "episode_return", "loss"])
    for i, value in enumerate(returns, start=1):
      writer.writerow(["learner", i, i * every, i * every, i, "", 0.5])
      writer.writerow(["evaluator", i, i * every, i * every, i, value, ""])
  with open(os.path.join(run_dir, "status.json"), "w") as f:
    json.dump({"status": "finished"}, f)


QUICK = ["--env", "gym:Pendulum-v1", "--steps", "300", "--eval-every", "100", "--quick", "--seeds", "2"]


def test_help_documents_every_flag():
  parser = argparse.ArgumentParser()
  sub = bench_control.add_parser(parser.add_subparsers(dest="benchmark"))
  for action in sub._actions:
    if action.option_strings and action.dest != "help":
      assert action.help, action.option_strings


def test_finished_runs_are_skipped_and_results_are_well_formed(tmp_path, capsys):
  out = str(tmp_path / "bench")
  args = _args(*QUICK, "--penalty", "gpl,clipped", "--out", out)
  bench, penalties = bench_control._benchmark(args)
  bench_control._prepare_out(out, bench)
  for penalty, offset in (("gpl", 0.0), ("clipped", -100.0)):
    for seed in (0, 1):
      _fake_run(os.path.join(out, "runs", f"sac-{penalty}", f"seed_{seed}"),
                [-1200 + offset, -600 + offset + seed, -200 + offset + 10 * seed])
  assert bench_control.run(args) == 0  # nothing to run: every run is finished
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
  bench, _ = bench_control._benchmark(_args(*QUICK, "--out", out))
  bench_control._prepare_out(out, bench)
  with pytest.raises(ConfigError, match=r"holds a different control benchmark \(steps: 300 there vs 600 now\)"):
    bench_control.run(_args(*[a if a != "300" else "600" for a in QUICK], "--out", out))
  stray = tmp_path / "stray"
  stray.mkdir()
  (stray / "notes.txt").write_text("x")
  with pytest.raises(ConfigError, match="not a control benchmark"):
    bench_control.run(_args(*QUICK, "--out", str(stray)))


def test_bad_input_is_rejected_before_any_run(tmp_path):
  with pytest.raises(ConfigError, match="sac needs continuous actions; use dqn or der for discrete ones"):
    bench_control.run(_args("--env", "gym:CartPole-v1", "--steps", "100", "--out", str(tmp_path / "a")))
  with pytest.raises(ConfigError, match="unknown sac penalty 'optimistic'"):
    bench_control.run(_args(*QUICK, "--penalty", "optimistic", "--out", str(tmp_path / "b")))
  with pytest.raises(ConfigError, match="--config expects KEY=VALUE"):
    bench_control.run(_args(*QUICK, "--config", "batch_size", "--out", str(tmp_path / "c")))
  assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


def test_published_references_are_only_confirmed_ones():
  state = references_for("dmc:cheetah-run")
  assert {(r.steps, r.mean) for r in state} == {(100_000, 616), (500_000, 795)}  # CURL Table 1, State SAC
  assert all("2004.04136" in r.source for r in state)
  assert {r.method for r in references_for("dmc:cheetah-run?pixels=84")} == {"CURL (pixels)", "SAC (pixels)"}
  assert references_for("gym:Pendulum-v1") == []


@pytest.mark.slow
def test_reduced_bench_runs_end_to_end(tmp_path):
  """One real quick sync run per penalty (subprocesses), then a rerun that skips them."""
  out = str(tmp_path / "bench")
  args = _args("--env", "gym:Pendulum-v1", "--steps", "300", "--eval-every", "150", "--quick", "--seeds", "1",
               "--penalty", "gpl,clipped", "--workers", "2", "--out", out)
  assert bench_control.run(args) == 0
  curves = pd.read_csv(os.path.join(out, "curves.csv"))
  assert sorted(curves.groupby("variant").size().tolist()) == [2, 2]
  for variant in ("sac-gpl", "sac-clipped"):
    with open(os.path.join(out, "runs", variant, "seed_0", "config.json")) as f:
      assert ["penalty", variant.split("-")[1]] in json.load(f)["agent_overrides"]
  assert bench_control.run(args) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_bench_process_stops_its_runs(tmp_path, stop):
  def the_run(bench):
    started = children(bench, "repertory.launch.cli train")
    return started[0] if started else None

  returncode, err = stop_bench_while_it_runs(
      ["bench", "control", "--env", "gym:Pendulum-v1", "--quick", "--seeds", "1", "--out", str(tmp_path / "bench")],
      the_run, stop)  # a 100k-step run: still going when stopped
  if stop == signal.SIGTERM:
    assert returncode == 130 and err.strip().splitlines()[-1] == "repertory: interrupted"
