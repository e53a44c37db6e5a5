"""status.json of a run: no "running" left behind by a heartbeat or by a process that was killed."""

import json
import time

from repertory.launch import training


def _status(run_dir):
  return json.loads((run_dir / "status.json").read_text())


def test_a_stopped_heartbeat_never_overwrites_the_final_status(tmp_path):
  heartbeat = training.Heartbeat(str(tmp_path), period_s=0.001, cpus=[0])
  time.sleep(0.05)
  assert _status(tmp_path)["status"] == "running" and _status(tmp_path)["cpus"] == [0]
  heartbeat.stop()
  training.write_status(str(tmp_path), "interrupted", signal="SIGTERM")
  time.sleep(0.05)
  assert _status(tmp_path)["status"] == "interrupted"
  assert not heartbeat._thread.is_alive()


def test_a_killed_run_is_marked_interrupted_and_keeps_its_details(tmp_path):
  training.write_status(str(tmp_path), "running", pid=12345, heartbeat=time.time(), commit="abc", cpus=[1])
  training.mark_stopped_if_running(str(tmp_path), "killed after its grace period")
  status = _status(tmp_path)
  assert status["status"] == "interrupted" and status["reason"] == "killed after its grace period"
  assert status["commit"] == "abc" and status["cpus"] == [1] and "pid" not in status


def test_a_final_status_is_left_as_it_is(tmp_path):
  for final in ("finished", "interrupted", "failed"):
    training.write_status(str(tmp_path), final, score=1.0)
    training.mark_stopped_if_running(str(tmp_path), "killed")
    assert _status(tmp_path) == {**_status(tmp_path), "status": final, "score": 1.0}
    assert "reason" not in _status(tmp_path)
  (tmp_path / "status.json").unlink()
  training.mark_stopped_if_running(str(tmp_path), "killed")  # no status: nothing to mark
  assert not (tmp_path / "status.json").exists()
