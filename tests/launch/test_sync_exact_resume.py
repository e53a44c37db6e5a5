"""A `sync` run interrupted anywhere and resumed writes the same metrics.csv rows (and TensorBoard scalars) and
ends with the same parameters as the run left alone: on SIGTERM (checkpointed at the end of the step), on SIGKILL and on a second
signal (resumed from the last periodic checkpoint, the rows written after it dropped), for every agent. Several
runs in one process, interrupted and resumed: test_sync_group.py."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from launch_helpers import REPO
from legs import one_leg
from tensorboard_events import scalars
from repertory import cli
from repertory.launch.sync_run import SyncRun

CARTPOLE = ["--launcher", "sync", "--max-actor-steps", "1600", "--eval-every", "700", "--eval-episodes", "2",
            "--checkpoint-every", "500", "--no-progress", "--config", "min_replay_size=200", "--config", "batch_size=32"]


def _rows(run_dir):
  """metrics.csv without its wall-clock column."""
  with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
    return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(f)]


def _final_params(run_dir):
  import orbax.checkpoint as ocp
  from repertory.utils.checkpointing import saved_steps
  directory = os.path.join(run_dir, "checkpoints")
  step = saved_steps(directory)[-1]
  manager = ocp.CheckpointManager(directory)
  try:
    return step, jax.tree.leaves(manager.restore(step))
  finally:
    manager.close()


def _assert_same_run(reference, resumed):
  assert _rows(resumed) == _rows(reference)
  assert scalars(os.path.join(resumed, "tensorboard")) == scalars(os.path.join(reference, "tensorboard"))
  with open(os.path.join(resumed, "metrics.csv"), newline="") as f:
    times = [float(row["time"]) for row in csv.DictReader(f)]
  assert times == sorted(times)  # the wall clock goes on from the checkpoint's last row
  (step, leaves), (reference_step, reference_leaves) = _final_params(resumed), _final_params(reference)
  assert step == reference_step and len(leaves) == len(reference_leaves)
  assert all(np.array_equal(a, b) for a, b in zip(leaves, reference_leaves))
  assert json.load(open(os.path.join(resumed, "status.json")))["status"] == "finished"
  assert not os.path.exists(os.path.join(resumed, "resume_state"))  # a finished run drops the replay it kept


@pytest.fixture(scope="module")
def cartpole_reference(tmp_path_factory):
  run_dir = str(tmp_path_factory.mktemp("reference") / "run")
  assert cli.main(["train", "--run-dir", run_dir, *CARTPOLE]) == 0
  return run_dir


def _actor_steps(run_dir):
  path = os.path.join(run_dir, "metrics.csv")
  rows = _rows(run_dir) if os.path.exists(path) else []
  return max([int(r["actor_steps"]) for r in rows], default=0)


@pytest.mark.parametrize("signals", [
    pytest.param(("SIGTERM",), id="SIGTERM", marks=one_leg(2)),
    pytest.param(("SIGKILL",), id="SIGKILL", marks=one_leg(2)),
    pytest.param(("SIGINT", "SIGTERM"), id="second-signal", marks=one_leg(1)),
])
def test_a_signalled_cli_run_resumes_exactly(tmp_path, cartpole_reference, signals):
  run_dir = str(tmp_path / "run")
  process = subprocess.Popen([sys.executable, "-m", "repertory.cli", "train", "--run-dir", run_dir, *CARTPOLE],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while time.time() < deadline and _actor_steps(run_dir) < 800 and process.poll() is None:  # past checkpoint 500
    time.sleep(0.05)
  for name in signals:  # two: the second one lands within the step the first one waits for, which stops at once
    process.send_signal(getattr(signal, name))
  _, err = process.communicate(timeout=60)
  assert process.returncode == {"SIGTERM": 143, "SIGKILL": -9}[signals[-1]], err[-2000:]
  assert "Traceback" not in err
  interrupted_at = json.load(open(os.path.join(run_dir, "counter.json")))["actor_steps"]
  assert 500 <= interrupted_at < 1600  # stopped part-way (SIGKILL: counter.json of the checkpoint at 500)
  if signals == ("SIGTERM",):  # checkpointed at the signal, past the periodic checkpoint
    assert json.load(open(os.path.join(run_dir, "status.json")))["status"] == "interrupted"
    assert "stopping after this step" in err and interrupted_at >= 800
  assert cli.main(["train", "--run-dir", run_dir, "--resume", *CARTPOLE]) == 0
  _assert_same_run(cartpole_reference, run_dir)


def _interrupt_at(monkeypatch, step, seed=None):
  """Sends this process SIGINT at the end of the loop step that reaches `step` (of run `seed`, default any)."""
  finish_step = SyncRun.finish_step

  def finish_and_signal(run):
    finish_step(run)
    if run.step == step and seed in (None, run.experiment.seed):
      signal.raise_signal(signal.SIGINT)
  monkeypatch.setattr(SyncRun, "finish_step", finish_and_signal)


@pytest.mark.parametrize("agent, env, config", [
    pytest.param("impala", "gym:CartPole-v1", ("batch_size=4",), id="impala", marks=one_leg(1)),
    pytest.param("sac", "gym:Pendulum-v1", ("min_replay_size=300", "batch_size=32"), id="sac", marks=one_leg(2)),
])
def test_an_interrupted_run_of_each_agent_resumes_exactly(tmp_path, monkeypatch, agent, env, config):
  flags = ["--agent", agent, "--env", env, "--launcher", "sync", "--max-actor-steps", "1200", "--eval-every", "500",
           "--eval-episodes", "1", "--no-progress", *[x for c in config for x in ("--config", c)]]
  reference, run_dir = str(tmp_path / "reference"), str(tmp_path / "run")
  assert cli.main(["train", "--run-dir", reference, *flags]) == 0
  with monkeypatch.context() as patch:
    _interrupt_at(patch, 800)
    assert cli.main(["train", "--run-dir", run_dir, *flags]) == 130
  counter_json = os.path.join(run_dir, "counter.json")
  counted = json.load(open(counter_json))
  assert counted["actor_steps"] == 800
  assert all(counted[f"{phase}_s"] > 0 for phase in ("policy", "environment", "learning", "evaluation"))
  first_s, counted["elapsed_s"] = counted["elapsed_s"], 1000.0  # as if the first invocation had taken 1000 s
  json.dump(counted, open(counter_json, "w"))
  start = time.time()
  assert cli.main(["train", "--run-dir", run_dir, "--resume", *flags]) == 0
  resumed_s = time.time() - start
  _assert_same_run(reference, run_dir)
  status = json.load(open(os.path.join(run_dir, "status.json")))
  assert 1000 < status["wall_clock_s"] <= 1000 + resumed_s + 0.1
  phases = [status[f"{phase}_s"] for phase in ("policy", "environment", "learning", "evaluation", "checkpoints")]
  assert status["policy_s"] > counted["policy_s"]  # both invocations' phases, within both invocations' time
  assert sum(phases) < first_s + status["wall_clock_s"] - 1000


def test_a_corrupted_run_state_is_refused_in_one_line_and_can_be_dropped(tmp_path, monkeypatch, capsys):
  run_dir = str(tmp_path / "run")
  flags = ["--max-actor-steps", "600", "--eval-every", "600", "--eval-episodes", "1", "--no-progress",
           "--config", "min_replay_size=100", "--config", "batch_size=16"]
  with monkeypatch.context() as patch:
    _interrupt_at(patch, 400)
    assert cli.main(["train", "--run-dir", run_dir, *flags]) == 130
  states = os.listdir(os.path.join(run_dir, "resume_state"))
  assert len(states) == 1
  path = os.path.join(run_dir, "resume_state", states[0])
  data = bytearray(open(path, "rb").read())
  data[len(data) // 2] ^= 0xFF
  open(path, "wb").write(bytes(data))
  status = open(os.path.join(run_dir, "status.json")).read()
  capsys.readouterr()
  assert cli.main(["train", "--run-dir", run_dir, "--resume", *flags]) == cli.EXIT_BAD_INPUT
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "does not match its checksum" in err and "delete it" in err, err
  assert open(os.path.join(run_dir, "status.json")).read() == status
  os.remove(path)  # as the line says: resume from the learner checkpoint alone
  assert cli.main(["train", "--run-dir", run_dir, "--resume", *flags]) == 0
  assert "no saved run state" in capsys.readouterr().out
