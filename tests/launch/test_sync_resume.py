"""A sync run writes its outputs, and --resume continues it from the checkpoint to a larger budget."""

import json
import os

from repertory import cli
from repertory.utils.loggers import read_metrics

FAST = ["--config", "min_replay_size=200", "--config", "batch_size=32", "--no-progress", "--eval-episodes", "2"]


def test_sync_run_then_resume(tmp_path, capsys):
  run_dir = str(tmp_path / "run")
  assert cli.main(["train", "--launcher", "sync", "--max-actor-steps", "1000", "--eval-every", "500",
                   "--run-dir", run_dir, *FAST]) == 0
  first = json.load(open(os.path.join(run_dir, "status.json")))
  assert first["status"] == "finished" and first["actor_steps"] == 1000 and first["learner_steps"] > 0
  for name in ("config.json", "metrics.csv", "learning_curve.png"):
    assert os.path.getsize(os.path.join(run_dir, name)) > 0
  assert cli.main(["train", "--launcher", "sync", "--max-actor-steps", "2000", "--eval-every", "500",
                   "--run-dir", run_dir, "--resume", *FAST]) == 0
  second = json.load(open(os.path.join(run_dir, "status.json")))
  assert second["actor_steps"] == 2000
  assert second["learner_steps"] > first["learner_steps"]  # the learner continued from its checkpoint
  evaluations = read_metrics(os.path.join(run_dir, "metrics.csv"), "evaluator")
  assert [int(r["actor_steps"]) for r in evaluations] == [500, 1000, 1500, 2000]
  assert "learning curve:" in capsys.readouterr().out


def test_sigterm_checkpoints_marks_interrupted_and_resume_continues(tmp_path):
  import signal
  import subprocess
  import sys
  import time
  from launch_helpers import REPO
  run_dir = str(tmp_path / "run")
  command = [sys.executable, "-m", "repertory.cli", "train", "--launcher", "sync", "--max-actor-steps",
             "50000", "--eval-every", "50000", "--run-dir", run_dir, *FAST]
  process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  metrics = os.path.join(run_dir, "metrics.csv")
  while time.time() < deadline and not any(
      r["source"] == "actor" and int(r["actor_steps"]) > 600 for r in (read_metrics(metrics) if os.path.exists(metrics) else [])):
    time.sleep(0.5)
  process.send_signal(signal.SIGTERM)
  _, err = process.communicate(timeout=60)
  assert process.returncode == 143, err[-2000:]
  assert "interrupted (SIGTERM)" in err and "Traceback" not in err
  status = json.load(open(os.path.join(run_dir, "status.json")))
  assert status["status"] == "interrupted" and status["signal"] == "SIGTERM"
  assert os.listdir(os.path.join(run_dir, "checkpoints"))  # written on the signal, before any periodic one
  counted = json.load(open(os.path.join(run_dir, "counter.json")))
  assert 600 < counted["actor_steps"] < 50000 and counted["learner_steps"] > 0
  assert cli.main(["train", "--launcher", "sync", "--max-actor-steps", str(int(counted["actor_steps"]) + 600),
                   "--eval-every", "50000", "--run-dir", run_dir, "--resume", *FAST]) == 0
  resumed = json.load(open(os.path.join(run_dir, "status.json")))
  assert resumed["status"] == "finished" and resumed["learner_steps"] > counted["learner_steps"]
