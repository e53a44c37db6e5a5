"""`repertory bench throughput --quick` runs inside CI and writes well-formed files."""

import csv
import json
import math

import pytest

from repertory.launch import cli


def test_quick_throughput_benchmark_writes_csv_png_and_provenance(tmp_path):
  out = tmp_path / "tp"
  assert cli.main(["bench", "throughput", "--out", str(out), "--quick", "--agents", "dqn"]) == 0
  with open(out / "throughput.csv") as f:
    rows = list(csv.DictReader(f))
  measured = {r["measurement"]: float(r["value"]) for r in rows}
  for name in ("raw AtariVectorEnv steps/s (random actions)", "actor steps/s (DQN policy + Reverb inserts)",
               "actor / raw ratio", "dqn: Reverb inserts/s", "dqn: Reverb samples/s", "dqn: updates/s"):
    assert name in measured and measured[name] > 0 and math.isfinite(measured[name])
  assert measured["actor / raw ratio"] == pytest.approx(
      measured["actor steps/s (DQN policy + Reverb inserts)"] / measured["raw AtariVectorEnv steps/s (random actions)"], rel=1e-2)
  assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  info = json.loads((out / "provenance.json").read_text())
  assert {"date", "commit", "machine", "jax_devices"} <= set(info)


def test_unknown_agent_or_game_is_one_line(tmp_path, capsys):
  assert cli.main(["bench", "throughput", "--out", str(tmp_path), "--quick", "--agents", "nope"]) == cli.EXIT_BAD_INPUT
  assert "unknown agent(s) nope" in capsys.readouterr().err
  assert cli.main(["bench", "throughput", "--out", str(tmp_path), "--quick", "--game", "Tetris2000"]) == cli.EXIT_BAD_INPUT
  assert "Tetris2000" in capsys.readouterr().err
