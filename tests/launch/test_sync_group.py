"""Several `sync` runs in one process (one vmapped update and policy call) train exactly as each run alone."""

import csv
import os

import jax
import numpy as np
import pytest

from legs import LEG, one_leg

# Small and fast: 4 updates per step, so 610 steps give 2,000 updates after the warm-up (100 items, the first
# after n = 10 steps).
OVERRIDES = (("batch_size", "8"), ("min_replay_size", "100"), ("target_update_period", "500"), ("hidden_size", "32"),
             ("num_atoms", "11"), ("updates_per_actor_step", "4"))
STEPS = 610


def _experiment(run_dir, seed, steps=STEPS, game="Pong"):
  from repertory.launch.experiment import ExperimentConfig
  return ExperimentConfig(agent="der", env=f"atari:{game}?max_episode_steps=400", run_dir=str(run_dir), seed=seed,
                          max_actor_steps=steps, eval_every=steps, eval_episodes=1, progress=False,
                          agent_overrides=OVERRIDES).validate()


def _final_state(experiment):
  from repertory.launch.sync_run import SyncRun
  from repertory.utils.checkpointing import Checkpointer
  like = SyncRun(experiment).learner.state()
  checkpointer = Checkpointer(os.path.join(experiment.run_dir, "checkpoints"))
  try:
    return checkpointer.restore(like)
  finally:
    checkpointer.close()


def _learner_rows(run_dir):
  with open(os.path.join(run_dir, "metrics.csv")) as f:
    return [(r["actor_steps"], r["learner_steps"], r["loss"]) for r in csv.DictReader(f) if r["source"] == "learner"]


def _train_alone_and_together(tmp_path, steps):
  from repertory.launch.sync import run_sync, run_sync_group
  alone = [_experiment(tmp_path / f"alone{seed}", seed, steps) for seed in (0, 1)]
  together = [_experiment(tmp_path / f"together{seed}", seed, steps) for seed in (0, 1)]
  summaries = [run_sync(e) for e in alone], run_sync_group(together, [None, None], [False, False])
  seeds_differ = [jax.tree_util.tree_leaves(_final_state(e).params)[0] for e in together]
  assert not np.allclose(seeds_differ[0], seeds_differ[1])  # the two runs are independent, not one run twice
  return alone, together, summaries


def _assert_same_parameters(alone, together, rtol, atol, updates):
  for a, t in zip(alone, together):
    state_alone, state_together = _final_state(a), _final_state(t)
    assert int(state_alone.steps) == int(state_together.steps) >= updates
    for x, y in zip(jax.tree_util.tree_leaves(state_alone.params), jax.tree_util.tree_leaves(state_together.params)):
      np.testing.assert_allclose(y, x, rtol=rtol, atol=atol)


@pytest.mark.slow
@pytest.mark.skipif(LEG != 1, reason="jaxlib 0.12's XLA:CPU rounds a vmapped update differently in the last bit "
                                     "(BUILD_NOTES.md); the next test covers this leg")
def test_two_runs_in_one_process_match_the_runs_alone_after_2000_updates(tmp_path):
  alone, together, (alone_summaries, together_summaries) = _train_alone_and_together(tmp_path, STEPS)
  _assert_same_parameters(alone, together, rtol=1e-5, atol=1e-6, updates=2_000)
  for a, t in zip(alone, together):
    assert _learner_rows(t.run_dir) == _learner_rows(a.run_dir)
  for s_alone, s_together in zip(alone_summaries, together_summaries):
    assert s_together["final_evaluation_return"] == s_alone["final_evaluation_return"]
    assert s_together["episodes"] == s_alone["episodes"] and s_together["learner_steps"] == s_alone["learner_steps"]


@pytest.mark.slow
@one_leg(2)
def test_two_runs_in_one_process_track_the_runs_alone_over_100_updates(tmp_path):
  alone, together, _ = _train_alone_and_together(tmp_path, 135)  # (135 - 109) steps x 4 updates
  _assert_same_parameters(alone, together, rtol=1e-4, atol=1e-6, updates=100)
