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
