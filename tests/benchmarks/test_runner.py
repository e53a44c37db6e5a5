"""The shared benchmark runner, driven by a one-file benchmark like the README's: real `sync` DQN runs on
CartPole in pinned worker processes, finished runs skipped, failures reported beside partial reports."""

import json
import os

import pandas as pd
import pytest

from repertory import benchmarks, cli
from repertory.benchmarks.base import Benchmark, Plan, Run
from repertory.benchmarks.curves import evaluation_curves
from repertory.launch.experiment import ExperimentConfig
from legs import one_leg

pytestmark = pytest.mark.serial  # its runs are timed (--run-timeout) and pinned to cores

FAST = (("min_replay_size", "100"), ("batch_size", "16"), ("updates_per_actor_step", "0.25"))


class CartPoleSeeds(Benchmark):
  name, help, description = "cartpole-seeds", "DQN on CartPole over seeds", "DQN on CartPole over seeds."

  def add_arguments(self, p):
    p.add_argument("--seeds", type=int, default=2, help="seeds 0 .. N-1")
    p.add_argument("--steps", type=int, default=300, help="actor steps per run")
    p.add_argument("--bad-seed", type=int, default=-1, help="this seed's run gets an impossible config")
    p.add_argument("--long-seed", type=int, default=-1, help="this seed's run gets a million steps")

  def plan(self, args):
    runs = []
    for seed in range(args.seeds):
      run_dir = os.path.join(args.out, "runs", f"seed_{seed}")
      overrides = FAST + ((("learning_rate", "nan"),) if seed == args.bad_seed else ())
      experiment = ExperimentConfig(agent="dqn", env="gym:CartPole-v1", run_dir=run_dir, seed=seed,
                                    max_actor_steps=1_000_000 if seed == args.long_seed else args.steps, eval_every=150, eval_episodes=1,
                                    agent_overrides=overrides, progress=False)
      runs.append(Run(f"seed {seed}", run_dir, experiment, {"variant": "dqn", "seed": seed}))
    return Plan({"steps": args.steps}, tuple(runs))

  def report(self, args, plan, finished, missing, wall_clock_s):
    path = os.path.join(args.out, "curves.csv")
    evaluation_curves(finished).to_csv(path, index=False)
    with open(os.path.join(args.out, "missing.json"), "w") as f:
      json.dump([r.name for r in missing], f)
    return [path]


@pytest.fixture(autouse=True)
def registered(monkeypatch):
  monkeypatch.setitem(benchmarks.BENCHMARKS, "cartpole-seeds", CartPoleSeeds())


def _bench(out, *flags):
  return cli.main(["bench", "cartpole-seeds", "--out", str(out), "--no-progress", *flags])


@one_leg(2)
def test_runs_in_pinned_workers_skips_finished_runs_and_refuses_another_configuration(tmp_path, capsys):
  out = tmp_path / "bench"
  assert _bench(out, "--workers", "2") == 0
  curves = pd.read_csv(out / "curves.csv")
  assert sorted(zip(curves["seed"], curves["step"])) == [(0, 150), (0, 300), (1, 150), (1, 300)]
  statuses = [json.loads((out / "runs" / f"seed_{s}" / "status.json").read_text()) for s in (0, 1)]
  assert [s["status"] for s in statuses] == ["finished", "finished"]
  assert sorted(c for s in statuses for c in s["cpus"]) == [0, 1]  # each run on its own core
  assert all("--xla_cpu_multi_thread_eigen=false" in s["xla_flags"] for s in statuses)
  assert all(s["actor_steps"] == 300 and s["score"] == s["final_evaluation_return"] for s in statuses)
  assert (out / "logs" / "seed_0.log").exists()

  capsys.readouterr()
  mtime = (out / "runs" / "seed_0" / "status.json").stat().st_mtime
  assert _bench(out, "--seeds", "3") == 0  # seeds 0 and 1 are reused, seed 2 runs
  printed = capsys.readouterr().out
  assert "seed 0: finished earlier, skipped" in printed and "3 run(s) (2 already finished, skipped)" in printed
  assert (out / "runs" / "seed_0" / "status.json").stat().st_mtime == mtime
  assert set(pd.read_csv(out / "curves.csv")["seed"]) == {0, 1, 2}

  assert _bench(out, "--steps", "600") == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "(steps: 300 there vs 600 now)" in err


def test_a_bad_run_config_is_one_line_before_anything_runs(tmp_path, capsys):
  out = tmp_path / "bench"
  assert _bench(out, "--seeds", "2", "--bad-seed", "1") == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "learning_rate" in err and not out.exists()


@one_leg(1)
def test_a_run_past_its_timeout_is_stopped_and_the_others_are_reported(tmp_path, capsys):
  out = tmp_path / "bench"
  assert _bench(out, "--seeds", "2", "--long-seed", "1", "--workers", "2", "--run-timeout", "15") == 1
  printed = capsys.readouterr()
  assert "seed 1: FAILED (exit 124)" in printed.out and "1 run(s) did not finish" in printed.err
  assert json.loads((out / "runs" / "seed_1" / "status.json").read_text())["status"] == "interrupted"
  assert "stopped after --run-timeout 15 s" in (out / "logs" / "seed_1.log").read_text()
  assert json.loads((out / "missing.json").read_text()) == ["seed 1"]
  assert set(pd.read_csv(out / "curves.csv")["seed"]) == {0}


@one_leg(2)
def test_report_only_needs_finished_runs(tmp_path, capsys):
  assert _bench(tmp_path / "none", "--report-only") == 2
  assert "holds no bench.json" in capsys.readouterr().err
  out = tmp_path / "bench"
  assert _bench(out, "--seeds", "1") == 0
  assert _bench(out, "--seeds", "2", "--report-only") == 0
  assert json.loads((out / "missing.json").read_text()) == ["seed 1"]
  assert not (out / "runs" / "seed_1").exists()
