"""`repertory bench throughput --quick` runs inside CI and writes well-formed files."""

import csv
import json
import math

import pytest

from repertory import cli
from repertory.replay.backends import reverb_installed
from legs import one_leg

pytestmark = pytest.mark.serial  # starts a Ray cluster


@one_leg(1)  # Reverb and the native service; leg 2 has the native one only
def test_quick_throughput_benchmark_writes_csv_png_and_provenance(tmp_path):
  out = tmp_path / "tp"
  assert cli.main(["bench", "throughput", "--out", str(out), "--quick", "--agents", "dqn"]) == 0
  with open(out / "throughput.csv") as f:
    rows = list(csv.DictReader(f))
  measured = {r["measurement"]: float(r["value"]) for r in rows}
  backends = ["native", "reverb"] if reverb_installed() else ["native"]
  names = ["raw AtariVectorEnv steps/s (random actions)", "actor steps/s (DQN policy + replay inserts)",
           "actor / raw ratio", "dqn: updates/s", "Atari table memory, plain layout",
           "Atari table memory, native deduplicated", "prioritised sample + update at 10,000 items"]
  names += [f"dqn: {b} {what}" for b in backends for what in ("inserts/s", "samples/s", "sample rate / learner consumption")]
  for name in names:
    assert name in measured and measured[name] > 0 and math.isfinite(measured[name]), name
  assert measured["actor / raw ratio"] == pytest.approx(
      measured["actor steps/s (DQN policy + replay inserts)"] / measured["raw AtariVectorEnv steps/s (random actions)"], rel=1e-2)
  # 84x84x4 uint8 observation and next observation: 55.1 KiB a transition, 5.3 GiB per 100k in the plain layout.
  assert measured["Atari table memory, plain layout"] == pytest.approx(2 * 84 * 84 * 4 * 1e5 / 2**30, rel=0.01)
  assert measured["Atari table memory, native deduplicated"] < 1.0
  assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  info = json.loads((out / "provenance.json").read_text())
  assert {"date", "commit", "machine", "jax_devices"} <= set(info)


def test_unknown_agent_or_game_is_one_line(tmp_path, capsys):
  assert cli.main(["bench", "throughput", "--out", str(tmp_path), "--quick", "--agents", "nope"]) == cli.EXIT_BAD_INPUT
  assert "unknown agent(s) nope" in capsys.readouterr().err
  assert cli.main(["bench", "throughput", "--out", str(tmp_path), "--quick", "--game", "Tetris2000"]) == cli.EXIT_BAD_INPUT
  assert "Tetris2000" in capsys.readouterr().err
  assert cli.main(["bench", "throughput", "--out", str(tmp_path), "--report-only"]) == cli.EXIT_BAD_INPUT
  assert "measures the machine as it runs" in capsys.readouterr().err
