"""`--learner-hosts N` on a two-node `ray.cluster_utils.Cluster`: the learner's processes go one per host (a
placement group), form one JAX program over CPU collectives, train, checkpoint, resume, and restart
together when one of them dies; asking for more
learner hosts than the cluster has fails before anything starts. (That the processes compute the update of
one process with the combined batch is tested in tests/agents/test_data_parallel.py.)"""

import csv
import json
import os
import signal
import subprocess
import sys

import psutil
import pytest

from launch_helpers import FAST_DQN, REPO, run_cli
from legs import one_leg

pytestmark = [pytest.mark.slow, pytest.mark.serial]


def _learner_rows(run_dir):
  with open(os.path.join(run_dir, "metrics.csv")) as f:
    return [row for row in csv.DictReader(f) if row["source"] == "learner"]


@one_leg(2)
def test_two_learner_processes_on_two_hosts_train_resume_and_restart_together(tmp_path):
  from ray.cluster_utils import Cluster
  from repertory.benchmarks.faults import driver_rows, wait_for
  cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
  second_host = cluster.add_node(num_cpus=2)
  cluster.wait_for_nodes()
  env = dict(os.environ, RAY_ADDRESS="")
  try:
    run_dir = str(tmp_path / "two_learners")
    common = ["--launcher", "ray", "--ray-address", cluster.address, "--num-actors", "1", "--eval-every", "1500",
              "--eval-episodes", "1", "--no-progress", "--run-dir", run_dir]
    code, out, err = run_cli("train", "--learner-hosts", "4", *common, *FAST_DQN, timeout=120, env=env)
    assert code != 0 and len(err.strip().splitlines()) == 1, err[-2000:]
    assert "--learner-hosts 4 asks for 4 learner hosts but the Ray cluster has 2 host(s)" in err
    assert not os.path.exists(run_dir)  # refused before the run started

    code, out, err = run_cli("train", "--learner-hosts", "2", "--max-actor-steps", "1500", *common, *FAST_DQN,
                             timeout=400, env=env)
    assert code == 0, err[-3000:]
    status = json.load(open(os.path.join(run_dir, "status.json")))
    assert status["status"] == "finished" and status["learner_steps"] > 0
    placement = status["placement"]
    assert {placement["learner"]["node_id"], placement["learner_1"]["node_id"]} == {
        cluster.head_node.node_id, second_host.node_id}  # one process per host
    rows = _learner_rows(run_dir)
    assert rows and all(float(r["processes"]) == 2 and float(r["devices"]) == 2 for r in rows)
    first_steps = status["learner_steps"]
    assert os.listdir(os.path.join(run_dir, "checkpoints"))

    drivers = driver_rows(run_dir)
    resumed = subprocess.Popen(
        [sys.executable, "-m", "repertory.cli", "train", "--resume", "--learner-hosts", "2", "--max-actor-steps", "5000",
         "--checkpoint-every-s", "2", *common], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:  # one process of the two dies: both restart, as one program again, from process 0's checkpoint
      # Killed once every node started (the driver's row): a node still starting waits for the learner, whose
      # restart would wait for the start to end.
      assert wait_for(lambda: len(_learner_rows(run_dir)) > len(rows) and len(driver_rows(run_dir)) > len(drivers),
                      200, resumed), resumed.communicate()[1][-3000:]
      victim = next(p for p in psutil.process_iter(["cmdline"]) if "ray::LearnerService" in " ".join(p.info["cmdline"] or []))
      victim.send_signal(signal.SIGKILL)
      out, err = resumed.communicate(timeout=400)
    finally:
      if resumed.poll() is None:
        resumed.kill()
    assert resumed.returncode == 0, err[-3000:]
    status = json.load(open(os.path.join(run_dir, "status.json")))
    assert status["status"] == "finished" and status["actor_steps"] == 5000
    assert status["restarts"] == {"learner": 1}  # the gang restarts as its first node, once
    assert status["learner_steps"] > first_steps  # resumed from the checkpoint process 0 shared with process 1
    restarted = [r for r in driver_rows(run_dir) if r["event"] == "restarted learner"]
    assert len(restarted) == 1 and restarted[0]["recovered"].startswith("the checkpoint at learner step")
  finally:
    cluster.shutdown()
