"""`repertory bench plasticity`: real DQN runs on permuted CartPole with interventions, its reports, bad input."""

import json
import os

import pandas as pd
import pytest

from repertory import cli
from repertory.benchmarks.plasticity import BENCHMARK, QUICK_OVERRIDES
from repertory.errors import ConfigError
from legs import one_leg


def _args(*argv):
  return cli.make_parser().parse_args(["bench", "plasticity", *argv])


QUICK = ["--quick", "--steps", "700", "--permute-every", "350", "--seeds", "1", "--eval-every", "700",
         "--eval-episodes", "1", "--no-progress"]


@one_leg(2)
def test_a_quick_bench_trains_each_intervention_and_reports_returns_and_diagnostics(tmp_path):
  out = str(tmp_path / "bench")
  assert cli.main(["bench", "plasticity", *QUICK, "--interventions", "injection,redo", "--workers", "2",
                   "--out", out]) == 0
  curves = pd.read_csv(os.path.join(out, "curves.csv"))
  assert set(curves["variant"]) == {"injection", "redo"}
  diagnostics = pd.read_csv(os.path.join(out, "diagnostics.csv"))
  assert set(diagnostics["variant"]) == {"injection", "redo"}
  assert (diagnostics["srank"] >= 1).all() and diagnostics["dormant"].between(0, 1).all()
  for name in ("curves.png", "srank.png", "probe_loss.png", "dormant.png", "final_scores.md", "provenance.json"):
    assert os.path.getsize(os.path.join(out, name)) > 0, name
  record = json.load(open(os.path.join(out, "bench.json")))["configuration"]
  # Injection at the first task change: (350 − 200 warm-up transitions) × 0.5 updates per step.
  assert record["injection_step"] == 75
  config = json.load(open(os.path.join(out, "runs", "injection", "seed_0", "config.json")))
  assert ["injection_step", "75"] in config["agent_overrides"]
  assert "permute_every=350&permute_seed=0" in config["env"]
  redo_config = json.load(open(os.path.join(out, "runs", "redo", "seed_0", "config.json")))
  assert ["redo_period", str(record["redo_period"])] in redo_config["agent_overrides"]


@one_leg(1)
def test_der_on_a_sequence_of_atari_games_trains_and_reports(tmp_path):
  out = str(tmp_path / "bench")
  assert cli.main(["bench", "plasticity", "--quick", "--agent", "der", "--env", "atari:Pong,Boxing?max_episode_steps=120",
                   "--steps", "500", "--permute-every", "250", "--seeds", "1", "--eval-every", "500",
                   "--eval-episodes", "1", "--no-progress", "--interventions", "injection", "--out", out]) == 0
  config = json.load(open(os.path.join(out, "runs", "injection", "seed_0", "config.json")))
  assert config["agent"] == "der" and config["env"] == "atari:Pong,Boxing?max_episode_steps=120&switch_every=250"
  # Injection at the first game change: (250 − 200 warm-up transitions) × 1 update per step.
  assert ["injection_step", "50"] in config["agent_overrides"]
  diagnostics = pd.read_csv(os.path.join(out, "diagnostics.csv"))
  assert len(diagnostics) >= 10 and (diagnostics["srank"] >= 1).all()
  curves = pd.read_csv(os.path.join(out, "curves.csv"))
  assert set(curves["variant"]) == {"injection"} and curves["return"].notna().any()


def test_each_intervention_sets_only_its_own_config_fields(tmp_path):
  plan = BENCHMARK.plan(_args(*QUICK, "--out", str(tmp_path / "bench")))
  fields = {run.labels["variant"]: {k for k, _ in run.experiment.agent_overrides} - {"diagnostics_period"}
            - {k for k, _ in QUICK_OVERRIDES["dqn"]} for run in plan.runs}
  assert fields == {"none": set(), "injection": {"injection_step"}, "layer_norm": {"layer_norm"},
                    "shrink_perturb": {"shrink_perturb_period"}, "redo": {"redo_period"}}


@pytest.mark.parametrize("argv, message", [
    (["--interventions", "none,redo_typo"], "--interventions"),
    (["--interventions", "none,none"], "--interventions"),
    (["--permute-every", "900"], "never changes"),
    (["--injection-step", "100000"], "--injection-step"),
    (["--config", "layer_norm=true"], "layer_norm"),
    (["--agent", "impala"], "impala"),
    (["--env", "minigrid:MiniGrid-Empty-5x5-v0"], "vector"),
    (["--env", "atari:Pong"], "one game"),
    (["--env", "atari:Pong,Nonsense"], "Nonsense"),
])
def test_bad_settings_are_one_line_errors(tmp_path, argv, message):
  args = _args(*QUICK, *argv, "--out", str(tmp_path / "bench"))
  with pytest.raises(ConfigError, match=message) as error:
    BENCHMARK.plan(args)
  assert "\n" not in str(error.value)
