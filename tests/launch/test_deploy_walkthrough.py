"""docs/deploy.md's walkthrough, run: its `ray status` and `repertory train` commands against a two-node
`ray.cluster_utils.Cluster` (a head declaring a GPU, the learner host; a CPU-only node, the actor host). The
`ray start` lines are played by the Cluster; `ray stop` is left out (it stops every Ray process here)."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from launch_helpers import FAST_DQN, REPO
from legs import one_leg

pytestmark = [pytest.mark.slow, pytest.mark.serial]


def walkthrough_commands():
  with open(os.path.join(REPO, "docs", "deploy.md")) as f:
    text = f.read()
  section = text.split("# Walkthrough:", 1)[1].split("\n# ", 1)[0]
  return [line.strip() for line in section.splitlines() if re.match(r"\s*(ray|repertory) ", line)]


def test_the_walkthrough_names_each_command_once():
  commands = walkthrough_commands()
  assert [c.split()[:2] for c in commands] == [["ray", "start"], ["ray", "start"], ["ray", "status"],
                                               ["repertory", "train"]]


@one_leg(2)
def test_the_walkthrough_runs_on_a_two_node_cluster_and_places_the_learner_on_the_gpu_host(tmp_path):
  from ray.cluster_utils import Cluster
  commands = {c.split()[1]: c.split() for c in walkthrough_commands()}
  cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 1})
  actor_host = cluster.add_node(num_cpus=3)
  cluster.wait_for_nodes()
  try:
    head = cluster.address
    env = dict(os.environ, RAY_ADDRESS="")
    status = [os.path.join(os.path.dirname(sys.executable), "ray")] + [
        a.replace("<head>:6379", head) for a in commands["status"][1:]]
    deadline = time.time() + 60
    while True:  # Ray's monitor reports the cluster's status a few seconds after it starts
      shown = subprocess.run(status, capture_output=True, text=True, timeout=120, env=env)
      assert shown.returncode == 0, shown.stderr[-2000:]
      if "No cluster status" not in shown.stdout or time.time() > deadline:
        break
      time.sleep(2)
    assert shown.stdout.count("node_") >= 2, shown.stdout  # both nodes joined

    train = [a.replace("<head>:6379", head) for a in commands["train"][1:]]
    run_dir = str(tmp_path / "cluster_dqn")
    reduced = ["--num-actors", "2", "--max-actor-steps", "2000", "--eval-every", "2000", "--eval-episodes", "1",
               "--run-dir", run_dir, "--no-progress", *FAST_DQN]  # later flags win: a short run
    done = subprocess.run([sys.executable, "-m", "repertory.cli", *train, *reduced], cwd=REPO, capture_output=True,
                          text=True, timeout=400, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    status_json = json.load(open(os.path.join(run_dir, "status.json")))
    assert status_json["status"] == "finished" and status_json["actor_steps"] == 2000
    placement = status_json["placement"]
    head_id = cluster.head_node.node_id
    assert placement["learner"]["node_id"] == head_id  # the GPU host
    for name in ("replay", "actor_0", "actor_1"):
      assert placement[name]["node_id"] == actor_host.node_id, (name, placement)
    line = next(l for l in done.stdout.splitlines() if l.startswith("placement: "))
    groups = dict(re.match(r".* \[(\w+)\]: (.*)", group).groups() for group in line[len("placement: "):].split("; "))
    assert "learner" in groups[head_id[:8]].split(", "), line
    assert {"replay", "actor_0", "actor_1"} <= set(groups[actor_host.node_id[:8]].split(", ")), line
  finally:
    cluster.shutdown()
