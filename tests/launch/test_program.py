"""The program model: handles resolve to services; nodes may only refer to earlier nodes."""

import pytest

from repertory.launch.launchers import ThreadLaunch
from repertory.launch.nodes import Service
from repertory.launch.program import Handle, Node, Program


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


def test_replay_service_checkpoint_restores_the_table(tmp_path):
  """With checkpoint_replay, a new replay node on the same run dir starts with the saved items."""
  import numpy as np
  from repertory.launch.experiment import ExperimentConfig
  from repertory.launch.nodes import ReplayService
  from repertory.replay.adders import Transition
  from repertory.replay.reverb_backend import ReverbWriter

  experiment = ExperimentConfig(agent="dqn", env="gym:CartPole-v1", run_dir=str(tmp_path), launcher="thread",
                                checkpoint_replay=True)
  first = ReplayService(experiment)
  writer = ReverbWriter(first.address(), first.table_name())
  obs = np.zeros(4, np.float32)
  writer.insert_batch([Transition(obs + i, np.int32(0), np.float32(1), np.float32(0.99), obs) for i in range(7)])
  writer.close()
  assert first.size() == 7
  first.checkpoint()
  first.stop()
  second = ReplayService(experiment)
  try:
    assert second.size() == 7
  finally:
    second.stop()
