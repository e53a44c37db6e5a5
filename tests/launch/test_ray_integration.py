"""Real Ray processes, real replay servers (native and Reverb): end to end, every node kind killed mid-run and
restarted, a restart bound, two-node placement, a SIGKILLed driver leaving no Ray process."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from launch_helpers import FAST_DQN, REPO
from legs import one_leg

pytestmark = [pytest.mark.slow, pytest.mark.serial]


def _ray_processes():
  names = ("raylet", "gcs_server", "ray::")
  found = []
  for p in psutil.process_iter(["name", "cmdline"]):
    try:
      text = (p.info["name"] or "") + " " + " ".join(p.info["cmdline"] or [])
    except psutil.Error:
      continue
    if any(n in text for n in names) and p.pid != os.getpid():
      found.append(p)
  return found


def _listening_addresses(driver_pid):
  """The addresses that a driver and every process under it (Ray's servers and workers) listen on over TCP."""
  pids = {driver_pid} | {p.pid for p in psutil.Process(driver_pid).children(recursive=True)}
  return {c.laddr.ip for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.pid in pids}


LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1"}


def _sources(run_dir):
  with open(os.path.join(run_dir, "metrics.csv")) as f:
    return {row["source"] for row in csv.DictReader(f)}


@pytest.mark.parametrize("backend", [pytest.param("native", marks=one_leg(2)), "reverb"])
def test_ray_run_end_to_end_writes_outputs_stops_at_budget_and_cleans_up(cli, tmp_path, backend):
  if backend == "reverb":
    pytest.importorskip("reverb", reason="dm-reverb installs only on the Python 3.11 leg")
  run_dir = str(tmp_path / "run")
  code, out, err = cli("train", "--launcher", "ray", "--num-actors", "2", "--max-actor-steps", "3000",
                       "--eval-every", "1500", "--eval-episodes", "2", "--run-dir", run_dir, "--no-progress",
                       "--replay", backend, *FAST_DQN, timeout=400)
  assert code == 0, err[-3000:]
  assert json.load(open(os.path.join(run_dir, "config.json")))["replay"] == backend
  from repertory.launch.train_command import REVERB_EXPOSED
  assert (REVERB_EXPOSED in err) == (backend == "reverb")  # the open port is said
  for name in ("config.json", "metrics.csv", "learning_curve.png", "status.json"):
    assert os.path.getsize(os.path.join(run_dir, name)) > 0, name
  assert os.listdir(os.path.join(run_dir, "checkpoints"))
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(run_dir, "tensorboard")))
  assert {"actor", "learner", "evaluator"} <= _sources(run_dir)
  status = json.load(open(os.path.join(run_dir, "status.json")))
  assert status["status"] == "finished"
  assert status["actor_steps"] == 3000  # exactly the budget
  assert status["learner_steps"] > 0
  assert "learning curve:" in out
  time.sleep(2)
  assert _ray_processes() == []


def _train(run_dir, *flags):
  return subprocess.Popen(
      [sys.executable, "-m", "repertory.cli", "train", "--launcher", "ray", "--run-dir", run_dir, "--no-progress",
       *FAST_DQN, *flags], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_in_turn(process, run_dir, victims, timeout_s=240):
  """Kills each node of `victims` once the driver logged the previous one's restart; the kills' times."""
  from repertory.benchmarks.faults import driver_rows, kill_node, wait_for
  assert wait_for(lambda: driver_rows(run_dir), timeout_s, process), process.communicate()[1][-3000:]
  killed = []
  for node in victims:
    seen = len(driver_rows(run_dir))
    assert kill_node(process.pid, node) is not None, f"no {node} process"
    killed.append(time.time())
    wait_for(lambda: len(driver_rows(run_dir)) > seen, 60, process)
  return killed


def _checkpointed_past_step_0(run_dir) -> bool:
  """Whether the driver checkpointed the run once the learner had trained (so a killed learner goes on from it)."""
  from repertory.utils.loggers import read_metrics
  path = os.path.join(run_dir, "metrics.csv")
  return os.path.exists(path) and any(int(r["checkpoint_learner_step"]) > 0 for r in read_metrics(path, "checkpoint"))


@one_leg(2)
def test_every_node_killed_is_restarted_and_the_run_meets_its_budget(tmp_path):
  run_dir = str(tmp_path / "run")
  process = _train(run_dir, "--num-actors", "2", "--max-actor-steps", "24000", "--eval-every", "24000",
                   "--eval-episodes", "1", "--checkpoint-every-s", "5", "--checkpoint-replay")
  try:
    from repertory.benchmarks.faults import wait_for
    assert wait_for(lambda: _checkpointed_past_step_0(run_dir), 240, process), process.communicate()[1][-3000:]
    _kill_in_turn(process, run_dir, ["counter", "learner", "evaluator", "actor", "replay"])  # replay: after its checkpoints
    out, err = process.communicate(timeout=400)
  finally:
    if process.poll() is None:
      process.kill()
  assert process.returncode == 0, err[-3000:]
  status = json.load(open(os.path.join(run_dir, "status.json")))
  assert status["status"] == "finished" and status["actor_steps"] == 24000
  assert status["restarts"] == {"replay": 1, "counter": 1, "learner": 1, "evaluator": 1, "actor_0": 1}
  assert status["actor_restarts"] == 1
  from repertory.benchmarks.faults import driver_rows
  events = {r["node"]: r for r in driver_rows(run_dir) if r["event"].startswith("restarted")}
  assert events["replay"]["recovered"].endswith("items from replay_checkpoint/")
  assert int(events["replay"]["recovered"].split()[0]) > 0
  assert events["counter"]["recovered"].startswith("counter.json at ")
  restored_step = int(events["learner"]["recovered"].rsplit(" ", 1)[1])
  assert restored_step > 0 and status["learner_steps"] > restored_step  # the learner went on from its checkpoint
  assert all(float(e["restart_s"]) < 60 for e in events.values())
  time.sleep(2)
  assert _ray_processes() == []


@one_leg(1)
def test_a_node_past_its_restart_bound_stops_the_run_naming_it(tmp_path):
  pytest.importorskip("reverb", reason="dm-reverb installs only on the Python 3.11 leg")
  run_dir = str(tmp_path / "run")  # the Reverb replay restarts once (its clients follow it), then stops the run
  process = _train(run_dir, "--num-actors", "1", "--max-actor-steps", "200000", "--replay", "reverb",
                   "--max-restarts", "1")
  try:
    killed = _kill_in_turn(process, run_dir, ["replay", "replay"])
    out, err = process.communicate(timeout=120)
    stopped_after = time.time() - killed[-1]
  finally:
    if process.poll() is None:
      process.kill()
  assert process.returncode == 1, err[-3000:]
  last = err.strip().splitlines()[-1]
  assert last.startswith("repertory: run failed: node 'replay' died 2 times, more than --max-restarts 1 allows"), last
  assert stopped_after < 60
  assert json.load(open(os.path.join(run_dir, "status.json")))["status"] == "failed"
  from repertory.benchmarks.faults import driver_rows
  assert [r["event"] for r in driver_rows(run_dir)][1:] == ["restarted replay"]
  time.sleep(2)
  assert _ray_processes() == []


@pytest.mark.parametrize("agent, env, overrides", [
    pytest.param("impala", "popgym:RepeatPreviousEasy", ["--config", "batch_size=4", "--config", "core=lstm"],
                 marks=one_leg(2)),
    pytest.param("der", "atari:Pong?max_episode_steps=300", ["--replay", "native", "--config", "min_replay_size=300",
                                                             "--config", "updates_per_actor_step=0.25"], marks=one_leg(1)),
    pytest.param("sac", "gym:Pendulum-v1", ["--config", "min_replay_size=200", "--config", "batch_size=64",
                                            "--config", "variable_update_period=50", "--config", "hidden_sizes=32,32",
                                            "--config", "updates_per_actor_step=0.25"], marks=one_leg(1)),
])
def test_other_agents_run_as_ray_processes(cli, tmp_path, agent, env, overrides):
  run_dir = str(tmp_path / agent)
  code, out, err = cli("train", "--agent", agent, "--env", env, "--launcher", "ray", "--num-actors", "2",
                       "--max-actor-steps", "1000", "--eval-every", "1000", "--eval-episodes", "1",
                       "--run-dir", run_dir, "--no-progress", *overrides, timeout=400)
  assert code == 0, err[-3000:]
  status = json.load(open(os.path.join(run_dir, "status.json")))
  assert status["status"] == "finished" and status["actor_steps"] >= 1000 and status["learner_steps"] > 0
  assert {"actor", "evaluator"} <= _sources(run_dir)


@one_leg(2)  # its ~20 s connect timeout is paid once
def test_attaching_to_a_cluster_with_token_authentication(tmp_path):
  import socket
  home = tmp_path / "home"
  home.mkdir()
  ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
  cluster_env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "token"}
  for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
    cluster_env.pop(name, None)
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  subprocess.run([ray_bin, "get-auth-token", "--generate"], env=cluster_env, check=True, capture_output=True, timeout=60)
  token = (home / ".ray" / "auth_token").read_text().strip()
  subprocess.run([ray_bin, "start", "--head", "--port", str(port), "--num-cpus", "2", "--include-dashboard=false"],
                 env=cluster_env, check=True, capture_output=True, timeout=120)
  try:
    driver_env = {k: v for k, v in cluster_env.items() if k != "RAY_AUTH_MODE"}
    driver_env["HOME"] = str(tmp_path)  # a host without the token file
    train = [sys.executable, "-m", "repertory.cli", "train", "--launcher", "ray", "--ray-address", f"127.0.0.1:{port}",
             "--num-actors", "1", "--max-actor-steps", "400", "--eval-every", "400", "--eval-episodes", "1",
             "--no-progress", *FAST_DQN]
    refused = subprocess.run([*train, "--run-dir", str(tmp_path / "refused")], env=driver_env, cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()], refused.stderr[-2000:]
    assert "refused this process's authentication token" in refused.stderr and "RAY_AUTH_TOKEN" in refused.stderr
    assert not (tmp_path / "refused").exists()
    with_token = {**driver_env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    too_many = subprocess.run([*train, "--num-actors", "4", "--run-dir", str(tmp_path / "big")], cwd=REPO,
                              capture_output=True, text=True, env=with_token, timeout=120)
    assert too_many.returncode == 2 and not (tmp_path / "big").exists()
    assert too_many.stderr.strip() == ("repertory: error: the Ray cluster has 2 CPU(s) but this run reserves 5 (one per "
                                       "actor and one per learner process); pass fewer --num-actors or add hosts to the cluster")
    attached = subprocess.run([*train, "--run-dir", str(tmp_path / "run")], cwd=REPO, capture_output=True, text=True,
                              env=with_token, timeout=300)
    assert attached.returncode == 0, attached.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "status.json").read_text())["actor_steps"] == 400
  finally:
    subprocess.run([ray_bin, "stop", "--force"], env=cluster_env, capture_output=True, timeout=120)


@one_leg(1)
def test_sigterm_of_a_ray_driver_checkpoints_and_exits_143_without_a_dump(tmp_path):
  run_dir = str(tmp_path / "run")
  process = subprocess.Popen(
      [sys.executable, "-m", "repertory.cli", "train", "--launcher", "ray", "--num-actors", "1",
       "--max-actor-steps", "200000", "--eval-every", "200000", "--checkpoint-replay", "--run-dir", run_dir,
       "--no-progress", *FAST_DQN],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.time() + 240
    metrics = os.path.join(run_dir, "metrics.csv")
    while time.time() < deadline and process.poll() is None and not (  # the driver's loop has begun
        os.path.exists(metrics) and {"driver", "learner"} <= _sources(run_dir)):
      time.sleep(0.5)
    assert process.poll() is None, process.communicate()[1][-2000:]
    assert LOOPBACK >= _listening_addresses(process.pid) != set()  # a local run: nothing reachable from the network
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
  finally:
    if process.poll() is None:
      process.kill()
  assert process.returncode == 143, err[-3000:]
  assert err.strip().splitlines()[-1].startswith("repertory: interrupted (SIGTERM)")
  assert "SIGTERM received" not in err and "Traceback" not in err, err[-3000:]
  status = json.load(open(os.path.join(run_dir, "status.json")))
  assert status["status"] == "interrupted" and status["signal"] == "SIGTERM"
  assert os.listdir(os.path.join(run_dir, "checkpoints"))  # written on the signal (the periodic one is at 120 s)
  assert json.load(open(os.path.join(run_dir, "counter.json")))["actor_steps"] > 0
  from repertory.utils.loggers import read_metrics
  (round_on_signal,) = read_metrics(os.path.join(run_dir, "metrics.csv"), "checkpoint")  # a whole round, replay too
  assert round_on_signal["checkpoint_actors_held"] == "1" and os.listdir(os.path.join(run_dir, "replay_checkpoint"))
  time.sleep(2)
  assert _ray_processes() == []


@one_leg(2)
def test_a_sigkilled_ray_driver_leaves_no_ray_process_and_a_run_dir_that_resumes(tmp_path):
  run_dir = str(tmp_path / "run")
  process = _train(run_dir, "--num-actors", "1", "--max-actor-steps", "200000", "--eval-every", "200000")
  try:
    from repertory.benchmarks.faults import driver_rows, wait_for
    assert wait_for(lambda: driver_rows(run_dir), 240, process), process.communicate()[1][-3000:]
    assert LOOPBACK >= _listening_addresses(process.pid) != set()  # a local run: nothing reachable from the network
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
  finally:
    if process.poll() is None:
      process.kill()
  deadline = time.time() + 30  # Ray's agents outlived a SIGKILLed driver by over a minute without the reaper
  while _ray_processes() and time.time() < deadline:
    time.sleep(0.5)
  assert _ray_processes() == []
  from repertory.launch import training
  assert training.read_status(run_dir)["status"] == "running"  # as the driver left it
  training.check_not_running(run_dir)  # its driver is gone: --resume may continue it
