"""`sync` with --envs-per-actor > 1: several environments stepped together, counted and evaluated correctly,
and deterministic for a seed."""

import csv

from repertory.launch.experiment import ExperimentConfig
from repertory.launch.sync import run_sync

FAST = (("min_replay_size", "64"), ("batch_size", "16"), ("updates_per_actor_step", "0.25"))


def _run(run_dir):
  experiment = ExperimentConfig(agent="dqn", env="gym:CartPole-v1", run_dir=str(run_dir), envs_per_actor=4,
                                max_actor_steps=402, eval_every=100, eval_episodes=1, agent_overrides=FAST,
                                progress=False).validate()
  summary = run_sync(experiment)
  with open(run_dir / "metrics.csv") as f:
    rows = list(csv.DictReader(f))
  return summary, rows


def test_vectorised_sync_counts_steps_in_batches_and_is_deterministic(tmp_path):
  summary, rows = _run(tmp_path / "a")
  assert summary["actor_steps"] == 404  # 101 batched steps of 4: the budget is overshot by < 4
  # one update per batched step (0.25 per actor step) once 64 items are in; the 3-step adders hold back up to
  # 2 transitions per environment, so that happens by actor step 72: (404 - 72) / 4 = 83 updates, give or take.
  assert 82 <= summary["learner_steps"] <= 86
  evaluations = [int(r["actor_steps"]) for r in rows if r["source"] == "evaluator"]
  assert evaluations == [100, 200, 300, 400, 404]  # each 100-step boundary once, then the final evaluation
  episodes = [r for r in rows if r["source"] == "actor"]
  assert len(episodes) == summary["episodes"] and sum(int(r["episode_length"]) for r in episodes) <= 404
  again, rows_again = _run(tmp_path / "b")
  assert again["final_evaluation_return"] == summary["final_evaluation_return"]
  strip = lambda rs: [{k: v for k, v in r.items() if k not in ("time", "elapsed_s")} for r in rs]
  assert strip(rows_again) == strip(rows)
