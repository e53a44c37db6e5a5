"""`repertory bench memory`: a tiny run writes curves / final scores / plot; finished runs are skipped;
unknown cores and an --out with other settings are refused with one line."""

import argparse
import json
import os

import pandas as pd
import pytest

from repertory.errors import ConfigError
from repertory.launch import bench_memory


def parse(*argv):
  parser = argparse.ArgumentParser()
  bench_memory.add_parser(parser.add_subparsers(dest="bench"))
  return parser.parse_args(["memory", *argv])


TINY = ["--env", "popgym:RepeatPreviousEasy", "--seeds", "1", "--steps", "160", "--eval-every", "80",
        "--eval-episodes", "1", "--num-envs", "2", "--no-progress",
        "--config", "batch_size=2", "--config", "unroll_length=4", "--config", "core_size=8", "--config", "hidden_sizes=8"]


def test_every_flag_has_help():
  parser = argparse.ArgumentParser()
  sub = bench_memory.add_parser(parser.add_subparsers(dest="bench"))
  for action in sub._actions:
    if action.option_strings and action.dest != "help":
      assert action.help, action.option_strings


def test_tiny_bench_writes_results_and_skips_finished_runs(tmp_path, capsys):
  out = str(tmp_path / "bench")
  assert bench_memory.run(parse("--cores", "none", "--out", out, *TINY)) == 0
  curves = pd.read_csv(os.path.join(out, "curves.csv"))
  assert set(curves.columns) == {"variant", "seed", "step", "return"}
  assert list(curves["step"]) == [0, 80, 160]
  table = pd.read_csv(os.path.join(out, "final_scores.csv"))
  assert list(table["variant"]) == ["none"] and {"ci_low", "ci_high"} <= set(table.columns)
  assert os.path.getsize(os.path.join(out, "curves.png")) > 0
  record = json.load(open(os.path.join(out, "bench.json")))
  assert {"date", "commit", "machine"} <= set(record["provenance"])
  capsys.readouterr()
  assert bench_memory.run(parse("--cores", "none", "--out", out, *TINY)) == 0
  assert "skip none seed 0" in capsys.readouterr().out
  with pytest.raises(ConfigError, match="different settings") as info:
    bench_memory.run(parse("--cores", "none", "--out", out, *TINY[:4], "--steps", "320", *TINY[6:]))
  assert "\n" not in str(info.value)


def test_unknown_core_is_refused(tmp_path):
  with pytest.raises(ConfigError, match="unknown core 'rnn'") as info:
    bench_memory.run(parse("--cores", "lstm,rnn", "--out", str(tmp_path / "x"), *TINY))
  assert "\n" not in str(info.value)
