"""The data-parallel learner: updates on 4 CPU devices equal the same updates on 1 device, for every agent.

JAX fixes the number of CPU devices when it starts, so `test_updates_on_four_devices_equal_one_device`
runs this file again in a fresh interpreter with `--xla_force_host_platform_device_count=4`; there the
per-agent tests run instead of being skipped.
"""

import json
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from learner_helpers import AGENTS, run_updates
from legs import one_leg

from repertory.agents.data_parallel import DataParallel, check_setting, resolve_devices
from repertory.errors import ConfigError

FOUR = "--xla_force_host_platform_device_count=4"
four_devices = pytest.mark.skipif(jax.device_count() < 4, reason="runs in the 4-device interpreter")


# Each agent on one leg (two per leg): the sharding code is the same for all four and runs on both legs.
AGENT_LEGS = {"der": 1, "dqn": 1, "impala": 2, "sac": 2}


@four_devices
@pytest.mark.parametrize("agent", [pytest.param(a, marks=one_leg(AGENT_LEGS[a])) for a in sorted(AGENTS)])
def test_one_update_on_four_devices_equals_one_device(agent):
  devices = jax.devices()[:4]
  _, single, single_metrics, single_priorities = run_updates(agent, DataParallel.create(devices=devices[:1]))
  learner, sharded, sharded_metrics, sharded_priorities = run_updates(agent, DataParallel.create(devices=devices))
  assert learner.data_parallel.num_devices == 4
  for leaf in jax.tree.leaves(learner.state()):
    assert leaf.sharding.device_set == set(devices) and leaf.sharding.is_fully_replicated
  flat_single, flat_sharded = jax.tree.leaves(single), jax.tree.leaves(sharded)
  assert len(flat_single) == len(flat_sharded) > 0
  for a, b in zip(flat_single, flat_sharded):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=2e-5, atol=2e-6)
  for name in single_metrics:
    np.testing.assert_allclose(single_metrics[name], sharded_metrics[name], rtol=2e-5, atol=2e-6, err_msg=name)
  for a, b in zip(single_priorities, sharded_priorities):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
  # the update did change the parameters: an update that does nothing would also be "equal"
  _, initial, _, _ = run_updates(agent, DataParallel.create(devices=devices[:1]), steps=0)
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(initial), flat_single))


@four_devices
def test_settings_choose_devices():
  assert len(resolve_devices("all", 8)) == jax.device_count() == 4
  assert len(resolve_devices("2", 8)) == 2
  assert len(resolve_devices("auto", 8)) == 1  # CPU: one device unless asked
  with pytest.raises(ConfigError, match="more devices than the 4 cpu"):
    resolve_devices("5", 10)
  with pytest.raises(ConfigError, match="do not divide the batch size 6"):
    resolve_devices("all", 6)


@four_devices
@pytest.mark.parametrize("launcher", [pytest.param("sync", marks=one_leg(1)), pytest.param("thread", marks=one_leg(2))])
def test_a_run_trains_on_four_devices_and_resumes_on_one(tmp_path, launcher):
  from repertory import cli
  run = str(tmp_path / "run")
  common = ["--run-dir", run, "--no-progress", "--launcher", launcher, "--eval-every", "300", "--eval-episodes", "1",
            "--config", "min_replay_size=100", "--config", "batch_size=16"]
  assert cli.main(["train", *common, "--max-actor-steps", "600", "--learner-devices", "all"]) == 0
  status = json.loads((tmp_path / "run" / "status.json").read_text())
  assert status["status"] == "finished" and status["learner_steps"] > 0
  assert json.loads((tmp_path / "run" / "config.json").read_text())["learner_devices"] == "all"
  if launcher == "thread":
    return
  # the checkpoint holds one copy of the replicated state: it resumes on any number of devices
  assert cli.main(["train", "--resume", *common[:3], "--max-actor-steps", "900", "--learner-devices", "1"]) == 0
  resumed = json.loads((tmp_path / "run" / "status.json").read_text())
  assert resumed["status"] == "finished" and resumed["learner_steps"] > status["learner_steps"]


@pytest.mark.skipif(jax.device_count() >= 4, reason="this is the 4-device interpreter itself")
def test_updates_on_four_devices_equal_one_device():
  env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {FOUR}", "JAX_PLATFORMS": "cpu"}
  result = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", __file__],
                          env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
  # 2 agents and 1 launcher of this leg, device choice and the 4 setting checks pass; the other leg's 3 and the 3
  # one-device tests are skipped
  assert "8 passed, 6 skipped" in result.stdout, result.stdout[-2000:]


@pytest.mark.skipif(jax.device_count() >= 4, reason="runs in the 1-device interpreter")
@one_leg(1)  # leg 2 runs two learner processes in tests/launch/test_multi_host_learner.py
def test_two_learner_processes_equal_one_process_with_the_combined_batch(tmp_path):
  import socket
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multi_process_learner.py")
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  run = lambda i, n: subprocess.Popen([sys.executable, script, str(i), str(n), str(port), str(tmp_path)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  processes = [run(0, 2), run(1, 2)]
  try:
    outputs = [p.communicate(timeout=300)[0] for p in processes]
  finally:
    for p in processes:
      p.kill()
  assert [p.returncode for p in processes] == [0, 0], "\n".join(o[-2000:] for o in outputs)
  two = [np.load(tmp_path / f"process{i}.npz") for i in range(2)]
  (tmp_path / "process0.npz").rename(tmp_path / "of_two.npz")
  alone = subprocess.run([sys.executable, script, "0", "1", "0", str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=300)
  assert alone.returncode == 0, alone.stdout[-2000:] + alone.stderr[-2000:]
  one = np.load(tmp_path / "process0.npz")
  params = sorted(k for k in one.files if k.startswith("param"))
  assert params and all(k in two[0].files and k in two[1].files for k in params)
  for k in params:  # both processes hold the same parameters: those of one process with the whole batch
    np.testing.assert_allclose(two[0][k], one[k], rtol=2e-5, atol=2e-6, err_msg=k)
    np.testing.assert_array_equal(two[0][k], two[1][k])
  # each process gets back the priorities of its own rows
  np.testing.assert_allclose(np.concatenate([two[0]["priorities"], two[1]["priorities"]], axis=-1), one["priorities"],
                             rtol=2e-5, atol=2e-6)


@pytest.mark.skipif(jax.device_count() >= 4, reason="runs in the 1-device interpreter")
def test_a_learner_process_whose_coordinator_cannot_be_reached_stops_with_one_line():
  import socket
  with socket.socket() as s:  # a loopback port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  code = ("from repertory.launch.learner_processes import LearnerProcesses\n"
          f"LearnerProcesses(1, 2, '127.0.0.1:{port}').initialize(timeout_s=2)")
  started = time.monotonic()
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert result.returncode != 0 and time.monotonic() - started < 30  # gave up after its timeout, did not abort
  assert f"could not reach the learner's coordinator at 127.0.0.1:{port}" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("setting, message", [
    ("0", "must be auto, all or a number >= 1"), ("many", "must be auto, all or a number >= 1"),
    ("3", "does not divide the batch size 32")])
def test_bad_settings_are_one_line(setting, message):
  with pytest.raises(ConfigError, match=message):
    check_setting(setting, 32)


def test_good_settings_pass():
  for setting in ("auto", "all", "1", "4", "32"):
    check_setting(setting, 32)
