"""A sync run writes its outputs, and --resume continues it from the checkpoint to a larger budget (an\ninterrupted run resumes exactly: test_sync_exact_resume.py)."""

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
