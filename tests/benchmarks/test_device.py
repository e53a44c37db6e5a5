"""`repertory bench device` and benchmarks/device_check.sh, in the reduced CPU mode (no accelerator here); the
Atari 100k suite script's refusal on a host without an accelerator."""

import csv
import json
import os
import subprocess
import sys

import pytest

from repertory import cli
from repertory.benchmarks.device import device_counts

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_device_counts_double_up_to_all():
  assert device_counts(1) == [1]
  assert device_counts(4) == [1, 2, 4]
  assert device_counts(6) == [1, 2, 4, 6]


def test_without_an_accelerator_the_full_check_is_refused_in_one_line(tmp_path, capsys):
  assert cli.main(["bench", "device", "--out", str(tmp_path / "d"), "--no-progress"]) == cli.EXIT_BAD_INPUT
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "no accelerator here" in err and "--quick" in err
  assert not (tmp_path / "d").exists()


def test_the_suite_script_refuses_in_one_line_without_an_accelerator(tmp_path):
  out = tmp_path / "suite"
  done = subprocess.run(["bash", os.path.join(REPO, "benchmarks", "atari100k_suite.sh"), str(out)],
                        env={**os.environ, "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu"},
                        capture_output=True, text=True, timeout=120)
  assert done.returncode == 2
  assert done.stderr.strip() == ("atari100k_suite: JAX sees no accelerator here; run it on a GPU or TPU host (on CPU: "
                                 "repertory bench atari100k --games atari100k)")
  assert not out.exists()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="the device check targets leg 2's stack (Python 3.12, current "
                    "JAX), as GPU hosts have it")
def test_the_script_runs_the_reduced_check_on_two_cpu_devices(tmp_path):
  out = tmp_path / "device"
  env = {**os.environ, "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  done = subprocess.run(["bash", os.path.join(REPO, "benchmarks", "device_check.sh"), str(out), "--quick",
                         "--sync-steps", "150"],
                        env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  with open(out / "device.csv") as f:
    rows = {row["measurement"]: row for row in csv.DictReader(f)}
  for name in ("der: time per update", "impala: time per update"):
    assert float(rows[name]["value"]) > 0 and rows[name]["unit"] == "ms"
  assert float(rows["der on 1 device(s): efficiency"]["value"]) == 1.0
  assert rows["der on 2 device(s): updates/s"]["detail"] == "global batch 16"  # the batch per device is fixed
  assert 0 < float(rows["der on 2 device(s): efficiency"]["value"]) < 2
  assert float(rows["DER sync run: actor steps/s"]["value"]) > 0
  assert all(float(rows[f"DER sync run: {phase}"]["value"]) > 0 for phase in ("policy", "environment", "learning"))
  provenance = json.loads((out / "provenance.json").read_text())
  assert provenance["device"] == "cpu" and provenance["devices"] == 2 and provenance["commit"] and provenance["date"]
  assert (out / "device.png").stat().st_size > 10_000
  status = json.loads((out / "runs" / "der_sync" / "status.json").read_text())
  assert status["status"] == "finished" and status["actor_steps"] == 150
