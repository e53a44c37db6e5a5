"""The committed benchmark results are read and reported by the current code: rerunning each README command
with --report-only over a copy reports every committed run and reproduces the committed tables."""

import os
import shutil

import pandas as pd
import pytest

from repertory import cli

RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "benchmarks", "results")

COMMANDS = {  # as each result's README / NOTES records it
    "atari100k_der": (["atari100k", "--seeds", "2", "--eval-envs", "1"], "per_game.csv", "game"),
    "atari100k_hyperbolic": (["atari100k", "--encoder", "hyperbolic", "--seeds", "2", "--eval-envs", "1"],
                             "per_game.csv", "game"),
    "memory_repeat_previous_easy": (["memory", "--cores", "lstm,none,lru,gtrxl,ppr", "--env", "popgym:RepeatPreviousEasy",
                                     "--seeds", "2", "--steps", "500000", "--eval-every", "50000", "--eval-episodes", "20"],
                                    "final_scores.csv", "variant"),
    "plasticity_cartpole": (["plasticity", "--steps", "40000", "--permute-every", "10000", "--seeds", "2"],
                            "final_scores.csv", "variant"),
    "plasticity_cartpole_60k": (["plasticity", "--seeds", "3"], "final_scores.csv", "variant"),
    "sac_pendulum_gpl_vs_clipped": (["control", "--agent", "sac", "--penalty", "gpl,clipped", "--env", "gym:Pendulum-v1",
                                     "--seeds", "3", "--steps", "10000", "--eval-every", "1000", "--eval-episodes", "5",
                                     "--config", "hidden_sizes=64,64", "--config", "batch_size=128"],
                                    "final_scores.csv", "variant"),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_committed_results_are_reported_again(tmp_path, capsys, name):
  flags, table, key = COMMANDS[name]
  out = tmp_path / name
  shutil.copytree(os.path.join(RESULTS, name), out, ignore=shutil.ignore_patterns("*.png", "tensorboard"))
  assert cli.main(["bench", *flags, "--out", str(out), "--report-only"]) == 0, capsys.readouterr().err
  committed = pd.read_csv(os.path.join(RESULTS, name, table)).sort_values(key, ignore_index=True)
  reported = pd.read_csv(out / table).sort_values(key, ignore_index=True)
  pd.testing.assert_frame_equal(reported, committed)
