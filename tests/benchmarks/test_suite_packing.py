"""`benchmarks/suite_packing.py`: one `bench atari100k` call per packing, its runs' steps over its wall-clock."""

import csv
import json
import os
import subprocess
import sys

import pytest

from legs import one_leg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "benchmarks", "suite_packing.py")


def _probe(*args):
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=600, cwd=REPO)


def test_a_bad_packing_is_refused_in_one_line(tmp_path):
  done = _probe("--packings", "2x", "--out", str(tmp_path))
  assert done.returncode != 0
  assert done.stderr.strip() == ("suite_packing: --packings must be KxW pairs of positive integers, e.g. 2x13,4x8, "
                                 "got '2x'")


@one_leg(2)
def test_a_packing_probe_counts_the_steps_of_its_call(tmp_path):
  done = _probe("--games", "Pong", "--seeds", "1", "--packings", "1x1", "--seconds", "30", "--out", str(tmp_path))
  assert done.returncode == 0, done.stderr[-2000:]
  with open(tmp_path / "packing.csv") as f:
    [row] = list(csv.DictReader(f))
  assert row["packing"] == "1x1" and row["exit"] == "75"  # stopped by --stop-after, checkpointed
  steps, rate = int(row["run_steps"]), float(row["run_steps_per_s"])  # rate: over the call's second half
  with open(tmp_path / "1x1" / "runs" / "Pong_seed0" / "counter.json") as f:
    counted = json.load(f)["actor_steps"]
  assert steps == counted > 200  # past the 200-item warm-up: it learned
  assert float(row["call_run_steps_per_s"]) == pytest.approx(steps / float(row["wall_s"]), rel=0.01)
  assert rate > 0
  assert float(row["suite_training_min"]) == pytest.approx(100_000 / rate / 60, rel=0.01)  # one run of 100k steps
  assert float(row["learning_ms"]) > 0 and float(row["policy_ms"]) > 0
