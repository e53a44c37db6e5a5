"""The pieces of an exact `sync` resume: captured object state, its files, replaying an environment's record,
metrics rows dropped past a checkpoint, a replay table restored in place, and signals held to a step's end."""

import collections
import os
import pickle
import signal

import jax
import numpy as np
import pytest

from repertory.errors import ConfigError
from repertory.utils import snapshots


class _Adder:
  SNAPSHOT_FIELDS = ("_pending",)

  def __init__(self):
    self._pending = collections.deque()
    self.writer = object()  # not state: comes from the fresh object


class _Base:
  SNAPSHOT_FIELDS = ("_steps",)

  def __init__(self):
    self._steps = 0


class _Actor(_Base):
  SNAPSHOT_FIELDS = ("_key", "_adders")

  def __init__(self):
    super().__init__()
    self._key = jax.random.PRNGKey(0)
    self._adders = [_Adder(), None]
    self.policy = jax.jit(lambda x: x)  # not state


def test_capture_and_restore_carry_every_field_into_a_fresh_object(tmp_path):
  actor = _Actor()
  actor._steps = 7
  actor._key = jax.random.split(actor._key)[0]
  actor._adders[0]._pending.append((np.arange(3), 1.5))
  path = str(tmp_path / "state")
  snapshots.write(path, snapshots.capture(actor))
  fresh = _Actor()
  writer, policy = fresh._adders[0].writer, fresh.policy
  snapshots.restore(fresh, snapshots.read(path))
  assert fresh._steps == 7 and np.array_equal(fresh._key, actor._key)
  assert isinstance(fresh._key, np.ndarray)  # JAX arrays are stored as NumPy arrays
  (observation, reward), = fresh._adders[0]._pending
  assert np.array_equal(observation, np.arange(3)) and reward == 1.5
  assert fresh._adders[0].writer is writer and fresh.policy is policy and fresh._adders[1] is None


def test_a_state_with_other_fields_is_refused():
  state = snapshots.capture(_Base())
  with pytest.raises(ConfigError, match="has fields"):
    snapshots.restore(_Actor(), state)


def test_a_changed_file_and_a_foreign_pickle_are_refused_in_one_line(tmp_path):
  path = str(tmp_path / "state")
  snapshots.write(path, {"x": np.ones(100)})
  data = bytearray(open(path, "rb").read())
  data[-10] ^= 0xFF
  open(path, "wb").write(bytes(data))
  with pytest.raises(ConfigError, match="does not match its checksum"):
    snapshots.read(path)
  # A well-formed file whose pickle would call a function: refused before anything runs.
  payload = pickle.dumps(os.system)
  import hashlib
  with open(path, "wb") as f:
    f.write(hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
  with pytest.raises(ConfigError, match="is not a type a saved state holds"):
    snapshots.read(path)
  with pytest.raises(ConfigError, match="cannot read"):
    snapshots.read(str(tmp_path / "missing"))


def test_replaying_the_record_brings_a_fresh_atari_environment_to_the_same_state():
  from repertory.agents.environment_loop import EnvironmentLoop
  from repertory.environments import make

  class RandomActor:
    def __init__(self):
      self.rng = np.random.default_rng(3)

    def select_action(self, observation):
      return np.int32(self.rng.integers(6))

    def observe_first(self, timestep, index=0):
      pass

    def observe(self, action, timestep, index=0):
      pass

    def update(self):
      pass

  env_name = "atari:Pong?max_episode_steps=60"
  loop = EnvironmentLoop(make(env_name, seed=5), RandomActor(), record=True)
  finished = loop.run_steps(150)  # two resets: episodes of 60 steps
  assert len(finished) == 2
  state = snapshots.capture(loop)
  original = loop._env
  fresh = EnvironmentLoop(make(env_name, seed=5), RandomActor(), record=True)
  snapshots.restore(fresh, state)
  fresh.replay_environment()
  for _ in range(40):  # the same next steps, into the third episode
    a, b = original.step(2), fresh._env.step(2)
    assert np.array_equal(a.observation, b.observation) and a.reward == b.reward and a.step_type == b.step_type
  assert original.ale.getFrameNumber() == fresh._env.ale.getFrameNumber()


def test_metrics_rows_past_the_snapshot_are_dropped(tmp_path):
  from repertory.utils.loggers import MetricsWriter, read_metrics
  writer = MetricsWriter(str(tmp_path), tensorboard=False)
  writer.write("actor", {"actor_steps": 1, "episode_return": 1.0})
  state = writer.snapshot_state()
  writer.write("actor", {"actor_steps": 2, "episode_return": 2.0})
  writer.write("learner", {"actor_steps": 2, "loss": 0.5})  # a new column rewrites the header
  again = MetricsWriter(str(tmp_path), tensorboard=False)
  assert again.rows == 3
  again.restore_snapshot(state)
  assert [r["episode_return"] for r in read_metrics(str(tmp_path / "metrics.csv"))] == ["1.0"]
  with pytest.raises(ConfigError, match="fewer than the 5 of the checkpoint"):
    again.restore_snapshot({"rows": 5})


def test_tensorboard_keeps_only_the_rows_kept_and_the_time_column_goes_on(tmp_path):
  from repertory.utils.loggers import MetricsWriter, read_metrics
  from tensorboard_events import scalars
  writer = MetricsWriter(str(tmp_path))
  writer.write("actor", {"actor_steps": 10, "episode_return": 1.5, "time": 100.0})
  writer.write("learner", {"actor_steps": 0, "learner_steps": 3, "loss": 0.25, "done": True, "time": 101.0})
  state = writer.snapshot_state()
  writer.write("actor", {"actor_steps": 20, "episode_return": 7.0, "time": 102.0})  # past the snapshot
  writer.close()
  kept = [("actor/episode_return", 10, 1.5), ("learner/learner_steps", 3, 3.0), ("learner/loss", 3, 0.25)]
  assert sorted(scalars(str(tmp_path / "tensorboard"))) == sorted(kept + [("actor/episode_return", 20, 7.0)])
  again = MetricsWriter(str(tmp_path))
  again.restore_snapshot(state)
  again.write("actor", {"actor_steps": 20, "episode_return": 7.0})
  again.close()
  events = scalars(str(tmp_path / "tensorboard"))
  assert sorted(events) == sorted(kept + [("actor/episode_return", 20, 7.0)])  # the dropped row's event not twice
  times = [float(r["time"]) for r in read_metrics(str(tmp_path / "metrics.csv"))]
  assert times[:2] == [100.0, 101.0] and 101.0 <= times[2] < 160.0  # continued from the last row kept, not from 0


def test_a_table_restored_in_place_samples_as_the_original_goes_on():
  from repertory.replay.config import TableConfig
  from repertory.replay.table import Table
  config = TableConfig(max_size=50, sampler="prioritized", min_size_to_sample=1)
  table = Table(config, seed=1, rate_limited=False)
  for i in range(80):  # wraps around the ring
    table.insert({"x": np.full(2, i, np.float32)}, priority=float(i % 7) + 0.5)
  table.sample(4)
  arrays, meta = table.state()
  fresh = Table(config, seed=99, rate_limited=False)
  fresh.load_state(arrays, meta, "test")
  for _ in range(3):
    a, b = table.sample(8), fresh.sample(8)
    assert np.array_equal(a.keys, b.keys) and np.array_equal(a.data["x"], b.data["x"])
    table.update_priorities(a.keys, np.ones(8))
    fresh.update_priorities(b.keys, np.ones(8))


def test_a_signal_is_held_to_the_end_of_the_step_and_a_second_one_stops_at_once():
  from repertory.launch import lifetime
  before = signal.getsignal(signal.SIGINT)
  with lifetime.signals_at_step_boundaries():
    signal.raise_signal(signal.SIGINT)  # held: nothing raised here
    with pytest.raises(KeyboardInterrupt) as held:
      lifetime.raise_if_terminated()
    assert held.value.at_step_boundary
    signal.raise_signal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as second:
      signal.raise_signal(signal.SIGINT)  # (not SIGTERM: this process would be marked as having had one)
    assert not hasattr(second.value, "at_step_boundary")
    lifetime.raise_if_terminated()  # the held one went with the second
  with lifetime.signals_at_step_boundaries():
    signal.raise_signal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
      with lifetime.checkpoint_being_written():
        signal.raise_signal(signal.SIGINT)  # waits for the checkpoint
        written = True
    assert written
  assert signal.getsignal(signal.SIGINT) is before
  lifetime.raise_if_terminated()  # nothing left over
