"""`repertory bench memory`: a tiny run writes curves / final scores / plot; finished runs are skipped;
unknown cores and an --out with other settings are refused with one line."""

import json
import os

import pandas as pd
import pytest

from repertory import cli
from repertory.benchmarks.runner import run_benchmark
from repertory.errors import ConfigError
from legs import one_leg


def parse(*argv):
  return cli.make_parser().parse_args(["bench", "memory", *argv])


TINY = ["--env", "popgym:RepeatPreviousEasy", "--seeds", "1", "--steps", "160", "--eval-every", "80",
        "--eval-episodes", "1", "--num-envs", "2", "--no-progress",
        "--config", "batch_size=2", "--config", "unroll_length=4", "--config", "core_size=8", "--config", "hidden_sizes=8"]


def test_every_flag_has_help(capsys):
  with pytest.raises(SystemExit):
    parse("--help")
  text = capsys.readouterr().out
  for flag in ("--cores", "--env", "--seeds", "--steps", "--launcher", "--num-envs", "--replay", "--eval-every",
               "--eval-episodes", "--config", "--out", "--workers", "--report-only", "--no-progress", "--run-timeout"):
    assert flag in text, flag


@one_leg(2)
def test_tiny_bench_writes_results_and_skips_finished_runs(tmp_path, capsys):
  out = str(tmp_path / "bench")
  assert run_benchmark(parse("--cores", "none", "--out", out, *TINY)) == 0
  curves = pd.read_csv(os.path.join(out, "curves.csv"))
  assert set(curves.columns) == {"variant", "seed", "step", "return"}
  assert list(curves["step"]) == [80, 160]  # evaluations every 80 steps of 2 environments stepped together
  table = pd.read_csv(os.path.join(out, "final_scores.csv"))
  assert list(table["variant"]) == ["none"] and {"ci_low", "ci_high"} <= set(table.columns)
  assert os.path.getsize(os.path.join(out, "curves.png")) > 0
  record = json.load(open(os.path.join(out, "bench.json")))
  assert {"date", "commit", "machine"} <= set(record["provenance"])
  capsys.readouterr()
  assert run_benchmark(parse("--cores", "none", "--out", out, *TINY)) == 0
  assert "none seed 0: finished earlier, skipped" in capsys.readouterr().out
  with pytest.raises(ConfigError, match=r"different configuration .*\(steps: 160 there vs 320 now\)") as info:
    run_benchmark(parse("--cores", "none", "--out", out, *TINY[:4], "--steps", "320", *TINY[6:]))
  assert "\n" not in str(info.value)


def test_unknown_core_is_refused(tmp_path):
  with pytest.raises(ConfigError, match="unknown core 'rnn'") as info:
    run_benchmark(parse("--cores", "lstm,rnn", "--out", str(tmp_path / "x"), *TINY))
  assert "\n" not in str(info.value)
