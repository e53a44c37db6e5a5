"""`repertory bench atari100k` in reduced mode: well-formed reports, finished runs skipped, other configs refused."""

import argparse
import csv
import json
import math
import os
import signal
import sys

import pytest

from launch_helpers import stop_bench_while_it_runs
from repertory import cli
from repertory.benchmarks import atari100k_report
from legs import one_leg


REDUCED = ["--games", "Pong", "--seeds", "1", "--steps", "250", "--eval-episodes", "2", "--max-episode-steps", "50",
           "--config", "min_replay_size=200", "--no-progress", "--workers", "1"]


def _bench(out, *extra):
  return cli.main(["bench", "atari100k", "--out", str(out), *REDUCED, *extra])


def _rows(path):
  with open(path) as f:
    return list(csv.DictReader(f))


@pytest.mark.slow
@one_leg(2)
def test_reduced_benchmark_writes_reports_skips_finished_runs_and_refuses_other_configs(tmp_path, capsys):
  out = tmp_path / "bench"
  assert _bench(out, "--seeds", "2", "--runs-per-process", "2") == 0  # both seeds in one process
  assert "2 run(s) (0 already finished, skipped) in 1 process(es)" in capsys.readouterr().out
  assert os.listdir(out / "logs") == ["Pong_seed0_and_1_more.log"]
  run_dir = out / "runs" / "Pong_seed0"
  status = json.loads((run_dir / "status.json").read_text())
  assert status["status"] == "finished" and status["actor_steps"] == 250 and status["eval_episodes"] == 2
  assert json.loads((run_dir / "config.json").read_text())["eval_envs"] == 2  # both games at once (up to 10)
  assert _rows(run_dir / "metrics.csv")
  runs = _rows(out / "runs.csv")
  assert [(r["game"], r["seed"]) for r in runs] == [("Pong", "0"), ("Pong", "1")]
  assert math.isfinite(float(runs[0]["score"])) and float(runs[0]["wall_clock_s"]) > 0
  assert runs[0]["wall_clock_s"] == runs[1]["wall_clock_s"]  # trained together
  assert all(float(runs[0][f"{phase}_s"]) > 0 for phase in ("policy", "environment", "learning", "evaluation"))
  for shared in ("policy_s", "learning_s", "peak_rss_mb"):  # one call for both runs, counted in full for each
    assert runs[0][shared] == runs[1][shared]
  assert 200 < float(runs[0]["peak_rss_mb"]) < 20_000  # the process's, JAX and two replays included
  per_game = _rows(out / "per_game.csv")
  assert per_game[0]["game"] == "Pong" and int(per_game[0]["seeds"]) == 2
  aggregate = _rows(out / "aggregate.csv")
  assert {r["metric"] for r in aggregate} == {"mean", "median", "iqm"}
  for r in aggregate:
    assert float(r["ci_low"]) <= float(r["value"]) <= float(r["ci_high"])
  comparison = (out / "comparison.md").read_text()
  assert "| Pong" in comparison and "drq_eps" in comparison and "alix" in comparison
  results = (out / "RESULTS.md").read_text()
  for needle in ("machine:", "cores", "commit:", "date:", "learner_updates_per_s", "wall_clock_s", "Reduced mode"):
    assert needle in results
  for png in (out / "per_game_vs_published.png", out / "aggregate_intervals.png", run_dir / "learning_curve.png"):
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert "plot_error" not in status

  capsys.readouterr()
  mtime = (run_dir / "status.json").stat().st_mtime
  (out / "pace.csv").write_text("run\n")  # the pace an earlier --stop-after left: gone once every run finished
  assert _bench(out) == 0  # same configuration: the finished run is reused, not rerun
  assert "1 already finished, skipped" in capsys.readouterr().out
  assert not (out / "pace.csv").exists()
  assert (run_dir / "status.json").stat().st_mtime == mtime

  capsys.readouterr()
  assert _bench(out, "--games", "Pong,Boxing", "--report-only") == 0  # reports over what finished, nothing run
  assert not (out / "runs" / "Boxing_seed0").exists()
  assert "Partial**: 1 of 2 requested runs finished; not yet run: Boxing seed 0" in (out / "RESULTS.md").read_text()
  assert [r["commit"] for r in _rows(out / "runs.csv")] == [status["commit"]]

  assert _bench(out, "--encoder", "alix") == 2  # a different configuration is refused in one line
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "different configuration" in err and "encoder" in err


def test_results_recorded_before_eval_envs_existed_had_one_evaluation_environment():
  from repertory.benchmarks.records import differences
  old = {"benchmark": "atari100k", "eval_episodes": 100}
  assert differences(old, {**old, "eval_envs": 1}) == []
  assert differences(old, {**old, "eval_envs": 10}) == ["eval_envs: 1 there vs 10 now"]


@pytest.mark.parametrize("extra, message", [
    (["--games", "Tetris2000"], "unknown Atari 100k game"),
    (["--encoder", "resnet"], "unknown encoder 'resnet'"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--config", "nonsense=1"], "no config field 'nonsense'"),
    (["--report-only"], "holds no bench_config.json"),
    (["--runs-per-process", "0"], "--runs-per-process must be >= 1"),
    (["--eval-envs", "0"], "--eval-envs must be >= 1"),
    (["--stop-after", "0"], "--stop-after must be > 0 seconds"),
    (["--stop-after", "nan"], "--stop-after must be > 0 seconds"),
    (["--games", "Pong", "--seeds", "2", "--runs-per-process", "3"], "more than the 2 run(s) asked for"),
    (["--seeds", "2", "--runs-per-process", "2", "--config", "diagnostics_period=100"], "diagnostics_period"),
    (["--preset", "alix"], "--preset alix is unknown for the der agent; use one of alix-paper"),
    (["--preset", "alix-paper", "--encoder", "der"], "--preset alix-paper trains the alix-atari encoder"),
    (["--config", "encoder=alix"], "pass the encoder with --encoder"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
  assert _bench(tmp_path / "b", *extra) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and message in err
  assert not (tmp_path / "b").exists()


def test_help_documents_every_flag(capsys):
  with pytest.raises(SystemExit):
    cli.main(["bench", "atari100k", "--help"])
  text = capsys.readouterr().out
  for flag in ("--agent", "--encoder", "--games", "--seeds", "--out", "--steps", "--eval-episodes", "--workers",
               "--config", "--max-episode-steps", "--report-only", "--no-progress", "--runs-per-process",
               "--stop-after", "--preset", "--eval-envs"):
    assert flag in text


def test_partial_aggregates_use_as_many_seeds_for_every_game():
  import pandas as pd
  runs = pd.DataFrame({"game": ["Pong", "Pong", "Boxing", "Freeway", "Freeway"], "seed": [1, 0, 0, 0, 1],
                       "score": [-19.0, -20.0, 2.0, 27.0, 28.0]})
  kept = atari100k_report.equal_seed_runs(runs)
  assert sorted(zip(kept["game"], kept["seed"])) == [("Boxing", 0), ("Freeway", 0), ("Pong", 0)]


PONG_BENCH = ["--games", "Pong", "--seeds", "1", "--eval-episodes", "1"]  # a full-length run


def _continues_exactly(out):
  """The next invocation continues the run from its checkpoint (exactly: test_sync_exact_resume.py)."""
  from repertory.benchmarks.atari100k import BENCHMARK
  from repertory.benchmarks.runner import _job
  parser = argparse.ArgumentParser()
  BENCHMARK.add_arguments(parser)
  args = parser.parse_args(PONG_BENCH)
  args.out = str(out)
  return _job(BENCHMARK, str(out), BENCHMARK.plan(args).runs[0]).resumes == (True,)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@one_leg(2)
def test_killing_the_bench_process_stops_its_runs(tmp_path):
  out = tmp_path / "bench"
  status_path = out / "runs" / "Pong_seed0" / "status.json"
  stop_bench_while_it_runs(
      ["bench", "atari100k", "--out", str(out), *PONG_BENCH, "--no-progress", "--workers", "1"],
      lambda bench: (status_path.parent / "checkpoints").is_dir() and json.loads(status_path.read_text())["pid"],
      signal.SIGKILL)
  # SIGTERM reaches the run from Linux when the pool died: it checkpoints and says so
  assert json.loads(status_path.read_text())["status"] == "interrupted"
  assert _continues_exactly(out)


@one_leg(1)
def test_stop_after_ends_the_invocation_and_the_next_one_continues(tmp_path):
  from launch_helpers import run_cli
  out = tmp_path / "bench"
  code, printed, err = run_cli("bench", "atari100k", "--out", str(out), *PONG_BENCH, "--no-progress", "--stop-after",
                               "25")
  assert code == 75, err[-2000:]
  assert "stopped after --stop-after 25 s with 1 run(s) left; rerun the same command to go on" in err
  counted = json.loads((out / "runs" / "Pong_seed0" / "counter.json").read_text())
  [pace] = _rows(out / "pace.csv")  # the stopped run's pace, as its counter counted it
  assert pace["run"] == "Pong seed 0" and int(pace["actor_steps"]) == counted["actor_steps"] > 0
  assert float(pace["learning_ms_per_step"]) == pytest.approx(1e3 * counted["learning_s"] / counted["actor_steps"],
                                                               abs=1e-3)
  assert "pace: at this pace the 1 run(s) left need ~" in printed
  status = json.loads((out / "runs" / "Pong_seed0" / "status.json").read_text())
  assert status["status"] == "interrupted" and status["signal"] == "SIGTERM"
  assert _continues_exactly(out)


# The standard 26 games of Atari 100k (Kaiser et al. 2020, arXiv 1903.00374, Table 1), written out by hand.
SUITE = ("Alien Amidar Assault Asterix BankHeist BattleZone Boxing Breakout ChopperCommand CrazyClimber DemonAttack "
         "Freeway Frostbite Gopher Hero Jamesbond Kangaroo Krull KungFuMaster MsPacman Pong PrivateEye Qbert RoadRunner "
         "Seaquest UpNDown").split()


def test_the_whole_suite_is_planned_and_reported_at_26_games(tmp_path):
  """`--games atari100k` plans the 26 games, each with its ROM; reports over 26 runs that scored the published
  DER scores give DER's human-normalised mean, one row and one bar per game."""
  import pandas as pd
  from repertory.benchmarks import atari100k
  from repertory.benchmarks.base import Run
  parser = argparse.ArgumentParser()
  atari100k.BENCHMARK.add_arguments(parser)
  args = parser.parse_args(["--games", "atari100k", "--seeds", "2"])
  args.out = str(tmp_path / "suite")
  plan = atari100k.BENCHMARK.plan(args)
  assert sorted({r.labels["game"] for r in plan.runs}) == sorted(SUITE) and len(plan.runs) == 52
  assert atari100k._games("all") == atari100k._games("atari100k")

  reference = pd.read_csv(os.path.join(os.path.dirname(atari100k.__file__), "..", "data", "atari100k_reference.csv"))
  reference = reference.set_index("game").loc[list(SUITE)]
  finished = []
  for game, row in reference.iterrows():
    run_dir = tmp_path / "suite" / "runs" / f"{game}_seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps({
        "score": row["der"], "eval_episodes": 100, "eval_return_std": 0.0, "actor_steps": 100_000,
        "learner_steps": 100_000, "wall_clock_s": 1.0, "learner_updates_per_s": 1.0, "training_steps_per_s": 1.0}))
    finished.append(Run(f"{game} seed 0", str(run_dir), None, {"game": game, "seed": 0}))
  record = {"agent": "der", "encoder": "der", "steps": atari100k.STEPS, "eval_episodes": atari100k.EVAL_EPISODES,
            "max_episode_steps": atari100k.MAX_EPISODE_STEPS, "overrides": {}}
  atari100k_report.write_reports(str(tmp_path / "suite"), record, finished)

  out = tmp_path / "suite"
  assert len(pd.read_csv(out / "per_game.csv")) == 26
  aggregate = pd.read_csv(out / "aggregate.csv").set_index("metric")
  normalised = (reference["der"] - reference["random"]) / (reference["human"] - reference["random"])
  assert aggregate.loc["mean", "value"] == pytest.approx(normalised.mean(), rel=1e-6)
  assert aggregate.loc["median", "value"] == pytest.approx(normalised.median(), rel=1e-6)
  assert aggregate.loc["mean", "value"] == pytest.approx(0.285, abs=5e-4)  # DER's published mean HNS
  # one run per game: the stratified bootstrap resamples runs within games, so the interval is the point
  assert aggregate.loc["mean", "ci_low"] == pytest.approx(aggregate.loc["mean", "value"]) == aggregate.loc["mean", "ci_high"]
  results = (out / "RESULTS.md").read_text()
  assert all(f"| {game} " in results for game in SUITE) and "Reduced mode" not in results
  assert (out / "per_game_vs_published.png").stat().st_size > 10_000


def test_runs_per_process_groups_games_of_one_action_set_in_plan_order(tmp_path):
  from repertory.benchmarks.atari100k import BENCHMARK
  args = cli.make_parser().parse_args(["bench", "atari100k", "--out", str(tmp_path / "b"), "--games", "Pong,Boxing,Alien",
                                    "--seeds", "2", "--runs-per-process", "3"])
  plan = BENCHMARK.plan(args)
  groups = [[run.name for run in group] for group in BENCHMARK.groups(args, plan.runs)]
  # Pong has 6 actions; Boxing and Alien 18 each.
  assert groups == [["Pong seed 0", "Pong seed 1"], ["Boxing seed 0", "Alien seed 0", "Boxing seed 1"], ["Alien seed 1"]]
  args.runs_per_process = 1
  assert [len(group) for group in BENCHMARK.groups(args, plan.runs)] == [1] * 6


def test_the_alix_paper_preset_sets_its_table_7_fields_under_the_config_flags(tmp_path):
  from repertory.benchmarks.atari100k import BENCHMARK
  args = cli.make_parser().parse_args(["bench", "atari100k", "--out", str(tmp_path / "b"), "--preset", "alix-paper",
                                       "--config", "batch_size=16"])
  plan = BENCHMARK.plan(args)
  config = plan.record["agent_config"]
  assert plan.record["encoder"] == config["encoder"] == "alix-atari"
  assert (config["n_step"], config["updates_per_actor_step"], config["target_update_period"], config["adam_eps"],
          config["random_steps"], config["batch_size"]) == (3, 2.0, 1, 1.5e-5, 1600, 16)
  assert config["importance_sampling_anneal_steps"] == 2 * (100_000 - 1_600)  # β reaches 1 at the run's last update
  assert ("encoder", "alix-atari") in plan.runs[0].experiment.agent_overrides
  assert "alix-atari encoder" in plan.runs[0].title
