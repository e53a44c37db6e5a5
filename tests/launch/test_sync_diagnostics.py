"""A sync run with `diagnostics_period` logs diagnostics rows at that period and draws diagnostics.png."""

import os

from repertory import cli
from repertory.utils.loggers import read_metrics

PERIOD = 25


def test_a_sync_run_logs_diagnostics_at_the_period_and_plots_them(tmp_path, capsys):
  run_dir = str(tmp_path / "run")
  assert cli.main(["train", "--launcher", "sync", "--max-actor-steps", "600", "--eval-every", "600",
                   "--run-dir", run_dir, "--no-progress", "--eval-episodes", "1",
                   "--config", "min_replay_size=200", "--config", "batch_size=32",
                   "--config", f"diagnostics_period={PERIOD}", "--config", "probe_steps=4"]) == 0
  rows = read_metrics(os.path.join(run_dir, "metrics.csv"), "diagnostics")
  learner_steps = [int(r["learner_steps"]) for r in rows]
  assert len(rows) >= 2 and all(s % PERIOD == 0 for s in learner_steps) and learner_steps == sorted(learner_steps)
  assert all(float(r["srank"]) >= 1 and 0 <= float(r["probe_loss"]) < 2 for r in rows)
  assert any(k.startswith("dormant/") for k in rows[0])
  assert os.path.getsize(os.path.join(run_dir, "diagnostics.png")) > 2000
  assert "plasticity diagnostics:" in capsys.readouterr().out
