"""A thread/ray run resumed after its driver died starts from its last checkpoint as one step: the learner's
checkpoint, the counts saved with it, and metrics.csv cut back to the rows written before it (thread launcher;
the driver's code is the same for ray)."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

from launch_helpers import FAST_DQN, REPO
from legs import one_leg
from repertory import cli
from repertory.utils.loggers import read_metrics

FLAGS = ["--launcher", "thread", "--max-actor-steps", "4000", "--eval-every", "4000", "--eval-episodes", "1",
         "--checkpoint-every", "1000", "--checkpoint-every-s", "1000000", "--no-progress", *FAST_DQN]


def _rows(run_dir, source=None):
  path = os.path.join(run_dir, "metrics.csv")
  return read_metrics(path, source) if os.path.exists(path) else []


@one_leg(1)  # the thread launcher: the same code on both legs
def test_a_resume_after_the_driver_died_continues_from_the_last_checkpoint_as_one_step(tmp_path):
  run_dir = str(tmp_path / "run")
  process = subprocess.Popen([sys.executable, "-m", "repertory.cli", "train", "--run-dir", run_dir, *FLAGS], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None and not (
        _rows(run_dir, "checkpoint") and max(int(r["actor_steps"]) for r in _rows(run_dir)) >= 1_800):
      time.sleep(0.05)
  finally:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
  checkpoint = _rows(run_dir, "checkpoint")[-1]
  step = int(checkpoint["checkpoint_learner_step"])
  counts = json.load(open(os.path.join(run_dir, "checkpoint_counts", f"{step}.json")))
  rows_at_checkpoint = counts["metrics_rows"]
  assert 1_000 <= counts["actor_steps"] < 1_800 <= max(int(r["actor_steps"]) for r in _rows(run_dir))

  assert cli.main(["train", "--run-dir", run_dir, "--resume", *FLAGS]) == 0
  rows = _rows(run_dir)
  kept, resumed = rows[:rows_at_checkpoint], rows[rows_at_checkpoint:]
  assert any(r["source"] == "checkpoint" and r["checkpoint_learner_step"] == str(step) for r in kept)  # kept
  # Rows written after the checkpoint by the dead driver are gone and the counts go on from the checkpoint's, so
  # the step column never jumps back (a few steps of slack: nodes write their rows concurrently).
  steps = [int(r["actor_steps"]) for r in rows]
  assert all(later >= earlier - 50 for earlier, later in zip(steps, steps[1:]))
  assert min(int(r["actor_steps"]) for r in resumed) >= counts["actor_steps"] - 50
  final = _rows(run_dir, "checkpoint")[-1]
  assert int(final["actor_steps"]) == 4_000 and int(final["checkpoint_learner_step"]) > step  # trained on from it
  restarts = [r for r in resumed if r["source"] == "driver"]
  assert restarts[0]["event"] == "all nodes started"
  status = json.load(open(os.path.join(run_dir, "status.json")))
  assert status["status"] == "finished" and status["actor_steps"] == 4_000


def _wait(predicate, timeout_s):
  deadline = time.time() + timeout_s
  while not predicate():
    assert time.time() < deadline, "timed out"
    time.sleep(0.02)


@one_leg(2)  # the thread launcher: the same code on both legs
def test_a_checkpoint_round_is_one_instant_of_the_running_actors_learner_and_replay(tmp_path):
  """Taken while two actors and the learner run: the replay checkpoint holds exactly the items of the actor steps
  counted with the learner checkpoint (1-step transitions: one item a step), and the actors go on after it."""
  from repertory.launch.distributed import CheckpointRounds, launch, make_program
  from repertory.launch.experiment import ExperimentConfig
  from repertory.launch.program import Handle
  from repertory.replay.table import Table
  run_dir = str(tmp_path / "run")
  experiment = ExperimentConfig(
      agent="dqn", env="gym:CartPole-v1", run_dir=run_dir, launcher="thread", max_actor_steps=1_000_000, num_actors=2,
      eval_every=1_000_000, eval_episodes=1, checkpoint_replay=True, replay="native", progress=False,
      agent_overrides=(("n_step", "1"), ("min_replay_size", "200"), ("batch_size", "32"))).validate()
  launched = launch(make_program(experiment, experiment.environment_spec()), experiment)
  try:
    counter, learner, replay = (launched.resolve(Handle(name, 0)) for name in ("counter", "learner", "replay"))
    _wait(lambda: counter.get()["actor_steps"] >= 1_000 and counter.get()["learner_steps"] > 0, 120)
    step = CheckpointRounds(experiment, 0).take(learner, counter, replay, counter.get()["actor_steps"])
    counts = json.load(open(os.path.join(run_dir, "checkpoint_counts", f"{step}.json")))
    _wait(lambda: counter.get()["actor_steps"] >= counts["actor_steps"] + 500, 60)  # released
  finally:
    launched.stop()
    launched.shutdown()
  table = Table.restore(os.path.join(run_dir, "replay_checkpoint"), experiment.make_builder().table_config())
  assert table.size() == counts["actor_steps"] >= 1_000
  (row,) = _rows(run_dir, "checkpoint")
  assert row["checkpoint_actors_held"] == "1" and int(row["checkpoint_learner_step"]) == step > 0


def test_a_resume_goes_on_from_the_latest_round_that_saved_its_counts(tmp_path):
  """A driver that died between a round's learner checkpoint and its counts left a checkpoint without counts: the
  resumed learner and counter both start from the round before, so learner state and counts stay of one instant."""
  import numpy as np
  from repertory.launch.distributed import make_program
  from repertory.launch.experiment import ExperimentConfig
  from repertory.launch.program import Handle
  from repertory.utils.checkpointing import Checkpointer
  run_dir = str(tmp_path / "run")
  experiment = ExperimentConfig(agent="dqn", env="gym:CartPole-v1", run_dir=run_dir, launcher="thread")
  checkpointer = Checkpointer(os.path.join(run_dir, "checkpoints"))
  for step in (100, 200):
    checkpointer.save(step, {"w": np.full(2, step, np.float32)})
  checkpointer.close()
  os.makedirs(os.path.join(run_dir, "checkpoint_counts"))
  with open(os.path.join(run_dir, "checkpoint_counts", "100.json"), "w") as f:
    json.dump({"actor_steps": 1_000, "metrics_rows": 3}, f)

  def starts(program):
    learner, counter = (program.node(Handle(name, 0)) for name in ("learner", "counter"))
    return learner.kwargs["restore_step"], counter.kwargs["checkpoint_step"], learner.restart_kwargs["restore_step"]
  spec = experiment.environment_spec()
  assert starts(make_program(experiment, spec, resume=True)) == (100, 100, None)  # a restarted learner: the latest
  with open(os.path.join(run_dir, "checkpoint_counts", "200.json"), "w") as f:
    json.dump({"actor_steps": 2_000, "metrics_rows": 5}, f)
  assert starts(make_program(experiment, spec, resume=True)) == (200, 200, None)
  # With --checkpoint-replay a round is complete once its replay table is written (last): a driver that died while
  # writing round 200's table left round 100's, so the run goes on from round 100.
  from repertory.launch.nodes import ReplayService
  with_replay = dataclasses.replace(experiment, checkpoint_replay=True, replay="native")
  replay = ReplayService(with_replay, spec)
  replay.checkpoint(learner_step=100)
  replay.stop()
  assert starts(make_program(with_replay, spec, resume=True)) == (100, 100, None)
  assert starts(make_program(experiment, spec, resume=True)) == (200, 200, None)  # without it, the replay is not waited for
  os.remove(os.path.join(run_dir, "checkpoint_counts", "100.json"))
  os.remove(os.path.join(run_dir, "checkpoint_counts", "200.json"))  # a run dir from before rounds saved counts
  assert starts(make_program(experiment, spec, resume=True)) == (200, 200, None)
  assert starts(make_program(experiment, spec, resume=False)) == (None, None, None)
