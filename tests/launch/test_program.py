"""The program model: handles resolve to services; nodes may only refer to earlier nodes."""

import pytest

from repertory.launch.launchers import ThreadLaunch
from repertory.launch.nodes import Service
from repertory.launch.program import Handle, Node, Program
from legs import one_leg


class Source(Service):
  def value(self):
    return 41


class Consumer(Service):
  def __init__(self, source):
    super().__init__()
    self._source = source

  def value(self):
    return self._source.value() + 1


def test_thread_launch_resolves_handles_to_services():
  program = Program("p")
  source = program.add_node(Node(Source), "source")
  consumer = program.add_node(Node(Consumer, (source,)), "consumer")
  launched = ThreadLaunch(program, timeout_s=5)
  try:
    assert launched.resolve(consumer).value() == 42
    assert launched.poll() == []
  finally:
    launched.stop()
  assert all(launched.finished(h) for h in program.handles())


def test_nodes_refer_only_to_earlier_nodes():
  program = Program("p")
  with pytest.raises(ValueError, match="not in the program yet"):
    program.add_node(Node(Consumer, (Handle("source", 0),)), "consumer")


def _write_items(service, items):
  from repertory.launch.replay_node import make_writer
  writer = make_writer(service)
  writer.insert_batch(items)
  writer.close()


@pytest.mark.parametrize("backend", ["native", "reverb"])
def test_replay_service_checkpoint_restores_the_table(tmp_path, backend):
  """With checkpoint_replay, a new replay node on the same run dir starts with the saved items."""
  if backend == "reverb":
    pytest.importorskip("reverb", reason="dm-reverb installs only on the Python 3.11 leg")
  import numpy as np
  from repertory.launch.experiment import ExperimentConfig
  from repertory.launch.nodes import ReplayService
  from repertory.replay.adders import Transition

  experiment = ExperimentConfig(agent="dqn", env="gym:CartPole-v1", run_dir=str(tmp_path), launcher="thread",
                                checkpoint_replay=True, replay=backend)
  spec = experiment.environment_spec()
  first = ReplayService(experiment, spec)
  obs = np.zeros(4, np.float32)
  _write_items(first, [Transition(obs + i, np.int32(0), np.float32(1), np.float32(0.99), obs) for i in range(7)])
  assert first.size() == 7
  first.checkpoint()
  first.stop()
  second = ReplayService(experiment, spec)
  try:
    assert second.size() == 7
  finally:
    second.stop()


def test_priority_updates_for_the_keys_of_a_replay_node_before_its_restart_are_ignored(tmp_path):
  """A restarted node's table numbers its items anew, so a learner's in-flight update for an old key would set the
  priority of whichever new item holds that number."""
  import numpy as np
  from repertory.launch.experiment import ExperimentConfig
  from repertory.launch.nodes import ReplayService
  from repertory.replay.adders import Transition

  experiment = ExperimentConfig(agent="dqn", env="gym:CartPole-v1", run_dir=str(tmp_path), launcher="thread",
                                replay="native", agent_overrides=(("min_replay_size", "1"),))
  spec = experiment.environment_spec()
  obs = np.zeros(4, np.float32)
  items = [Transition(obs + i, np.int32(0), np.float32(1), np.float32(0.99), obs) for i in range(4)]
  before, after = ReplayService(experiment, spec), ReplayService(experiment, spec)  # one node, then its restart
  try:
    for node in (before, after):
      _write_items(node, items)
    (old,) = before.sample_batches(4, 1)
    (new,) = after.sample_batches(4, 1)
    after.update_priorities(old.keys, np.array([1e6, 1.0, 1.0, 1.0]))
    assert after._table.sample_batches(4, 1)[0].probabilities.max() < 0.5  # nothing took the stale priorities
    after.update_priorities(new.keys, np.array([1e6, 1.0, 1.0, 1.0]))
    favoured = int(new.keys[0] & np.uint64(2**48 - 1))
    assert (after._table.sample_batches(64, 1)[0].keys == favoured).mean() > 0.9  # its own keys still count
  finally:
    before.stop()
    after.stop()


@pytest.mark.parametrize("written, read", [("native", "reverb"), ("reverb", "native")])
def test_replay_checkpoint_of_the_other_backend_is_refused(tmp_path, written, read):
  pytest.importorskip("reverb", reason="dm-reverb installs only on the Python 3.11 leg")
  import numpy as np
  from repertory.errors import ConfigError
  from repertory.launch.experiment import ExperimentConfig
  from repertory.launch.nodes import ReplayService
  from repertory.replay.adders import Transition

  def experiment(backend):
    return ExperimentConfig(agent="dqn", env="gym:CartPole-v1", run_dir=str(tmp_path), launcher="thread",
                            checkpoint_replay=True, replay=backend)
  spec = experiment(written).environment_spec()
  first = ReplayService(experiment(written), spec)
  obs = np.zeros(4, np.float32)
  _write_items(first, [Transition(obs, np.int32(0), np.float32(1), np.float32(0.99), obs)] * 3)
  first.checkpoint()
  first.stop()
  with pytest.raises(ConfigError, match=f"written by the {written} replay service; resume with --replay {written}"):
    ReplayService(experiment(read), spec)


@one_leg(2)  # the thread launcher: the same code on both legs
def test_a_thread_run_checkpoints_learner_counter_and_replay_together_every_n_actor_steps(tmp_path):
  """Checkpoint rounds by step count (the time period set out of reach): one `checkpoint` row per round, each past its
  multiple of --checkpoint-every, with the learner checkpoint of the step it names, counter.json and the replay
  table written with it."""
  import json
  import os
  from repertory.launch.distributed import run_distributed
  from repertory.launch.experiment import ExperimentConfig
  from repertory.utils.checkpointing import saved_steps
  from repertory.utils.loggers import read_metrics
  run_dir = str(tmp_path / "run")
  experiment = ExperimentConfig(
      agent="dqn", env="gym:CartPole-v1", run_dir=run_dir, launcher="thread", max_actor_steps=3_000, num_actors=1,
      eval_every=3_000, eval_episodes=1, checkpoint_every=1_000, checkpoint_every_s=1e6, checkpoint_replay=True,
      agent_overrides=(("min_replay_size", "200"), ("batch_size", "32")), progress=False).validate()
  summary = run_distributed(experiment)
  assert summary["actor_steps"] == 3_000
  rounds = read_metrics(os.path.join(run_dir, "metrics.csv"), "checkpoint")
  assert [int(r["actor_steps"]) // 1_000 for r in rounds] == [1, 2, 3]  # one per 1,000 steps crossed, one at the end
  steps = [int(r["checkpoint_learner_step"]) for r in rounds]
  assert 0 < steps[0] < steps[1] <= steps[2] == summary["learner_steps"]
  assert set(steps[1:]) <= set(saved_steps(os.path.join(run_dir, "checkpoints")))  # the last two are kept
  assert sorted(os.listdir(os.path.join(run_dir, "checkpoint_counts"))) == sorted({f"{s}.json" for s in steps[1:]})
  assert os.path.isdir(os.path.join(run_dir, "replay_checkpoint"))
  assert json.load(open(os.path.join(run_dir, "counter.json")))["actor_steps"] == 3_000


def test_a_checkpoint_round_is_due_once_a_restarted_node_is_back(tmp_path):
  from repertory.launch.distributed import CheckpointRounds
  from repertory.launch.experiment import ExperimentConfig
  experiment = ExperimentConfig(agent="dqn", env="gym:CartPole-v1", run_dir=str(tmp_path), launcher="thread",
                                checkpoint_every=1_000, checkpoint_every_s=1e6)
  rounds = CheckpointRounds(experiment, actor_steps=0)
  assert not rounds.due(500, restarts=0)
  assert rounds.due(500, restarts=1)  # the restarted node's state is saved at once
  assert not rounds.due(600, restarts=1)
  assert rounds.due(1_000, restarts=1)
