"""Bad input: one line saying what is wrong, a non-zero exit, no traceback, nothing half-written."""

import json
import socket

import pytest

from repertory import cli


def _error_line(capsys):
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1, err
  assert "Traceback" not in err
  return err


def _train(tmp_path, *extra):
  return cli.main(["train", "--run-dir", str(tmp_path / "run"), "--max-actor-steps", "100", "--no-progress", *extra])


@pytest.mark.parametrize("extra, message", [
    (("--agent", "nope"), "unknown agent 'nope'"),
    (("--env", "nowhere:Thing"), "nowhere"),
    (("--env", "gym:NoSuchEnv-v9"), "NoSuchEnv"),
    (("--launcher", "mpi"), "unknown launcher 'mpi'"),
    (("--num-actors", "0"), "--num-actors must be >= 1"),
    (("--eval-episodes", "-3"), "--eval-episodes must be >= 1"),
    (("--eval-envs", "0"), "--eval-envs must be >= 1"),
    (("--eval-envs", "6"), "--eval-envs 6 is more than the 5 evaluation episode(s)"),
    (("--checkpoint-every", "0"), "--checkpoint-every must be >= 1"),
    (("--checkpoint-every-s", "nan"), "--checkpoint-every-s must be a positive number of seconds"),
    (("--checkpoint-every-s", "-5"), "--checkpoint-every-s must be a positive number of seconds"),
    (("--config", "min_replay_size=5000", "--config", "max_replay_size=100"), "can never be sampled"),
    (("--config", "no_such_field=1"), "no config field 'no_such_field'"),
    (("--config", "learning_rate=fast"), "is not a float"),
    (("--config", "learning_rate=-1"), "learning_rate=-1.0 must be > 0"),
    (("--config", "learning_rate=nan"), "'learning_rate=nan' is not a float"),
    (("--config", "discount=2"), "discount=2.0 must be in [0, 1]"),
    (("--config", "n_step=0"), "n_step=0 must be >= 1"),
    (("--preset", "alix-paper"), "--preset alix-paper is unknown for the dqn agent; use one of (none)"),
    (("--agent", "der", "--env", "atari:Pong", "--preset", "alix-paper", "--config", "n_step=0"),
     "DER needs n_step >= 1"),  # --config goes over the preset's n_step 3
    (("--ray-address", "127.0.0.1:6379"), "--ray-address needs --launcher ray"),
    (("--learner-devices", "many"), "--learner-devices must be auto, all or a number >= 1"),
    (("--learner-devices", "3"), "--learner-devices 3 does not divide the batch size 128"),
    (("--learner-devices", "64"), "asks for more devices than the 1 cpu device(s) here"),
    (("--learner-hosts", "0"), "--learner-hosts must be >= 1, got 0"),
    (("--launcher", "ray", "--learner-hosts", "2"), "--learner-hosts 2 needs a Ray cluster of that many hosts"),
    (("--launcher", "ray", "--ray-address", "127.0.0.1:1", "--learner-hosts", "3"),
     "--learner-hosts 3 does not divide the batch size 128"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, message):
  assert _train(tmp_path, *extra) == cli.EXIT_BAD_INPUT
  assert message in _error_line(capsys)
  assert not (tmp_path / "run" / "config.json").exists()  # nothing that looks like a run


def test_zero_budget(tmp_path, capsys):
  assert cli.main(["train", "--run-dir", str(tmp_path / "r"), "--max-actor-steps", "0"]) == cli.EXIT_BAD_INPUT
  assert "--max-actor-steps must be >= 1" in _error_line(capsys)


def test_unreachable_ray_address(tmp_path, capsys):
  with socket.socket() as s:  # a loopback port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  assert _train(tmp_path, "--launcher", "ray", "--ray-address", f"127.0.0.1:{port}") == cli.EXIT_BAD_INPUT
  assert "cannot reach a Ray cluster" in _error_line(capsys)


def test_existing_run_dir_needs_resume_or_overwrite(tmp_path, capsys):
  run = tmp_path / "run"
  run.mkdir()
  (run / "config.json").write_text(json.dumps({"agent": "dqn"}))
  (run / "metrics.csv").write_text("precious\n")
  assert _train(tmp_path) == cli.EXIT_BAD_INPUT
  assert "already exists; pass --resume" in _error_line(capsys)
  assert (run / "metrics.csv").read_text() == "precious\n"


def test_overwrite_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "thesis.tex").write_text("keep me")
  assert _train(tmp_path, "--overwrite") == cli.EXIT_BAD_INPUT
  assert "not a repertory run" in _error_line(capsys)
  assert (tmp_path / "run" / "thesis.tex").exists()


def test_resume_without_a_run(tmp_path, capsys):
  assert _train(tmp_path, "--resume") == cli.EXIT_BAD_INPUT
  assert "nothing to resume" in _error_line(capsys)


def test_help_documents_every_flag(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["train", "--help"])
  assert exit_info.value.code == 0
  text = capsys.readouterr().out
  parser = cli.make_parser()
  train = parser._subparsers._group_actions[0].choices["train"]
  for action in train._actions:
    for flag in action.option_strings:
      assert flag in text
    assert action.help, f"{action.option_strings} has no help"


def test_subprocess_bad_input_prints_no_traceback(cli, tmp_path):
  code, out, err = cli("train", "--agent", "nope", "--run-dir", str(tmp_path / "r"))
  assert code == 2
  assert err.strip().splitlines()[-1].startswith("repertory: error: unknown agent 'nope'")
  assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["bench", "--help"], ["bench", "throughput", "--help"],
                                  ["bench", "atari100k", "--help"], ["bench", "memory", "--help"],
                                  ["bench", "control", "--help"]])
def test_every_help_page_renders(argv, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(argv)
  assert exit_info.value.code == 0
  assert "usage:" in capsys.readouterr().out


def test_reverb_backend_where_reverb_is_not_installed(tmp_path, capsys, monkeypatch):
  from repertory.replay import backends
  monkeypatch.setattr(backends, "reverb_installed", lambda: False)  # as on the Python 3.12 leg
  assert _train(tmp_path, "--launcher", "thread", "--replay", "reverb") == cli.EXIT_BAD_INPUT
  assert "dm-reverb is not installed" in _error_line(capsys)
  assert _train(tmp_path, "--replay", "reverb") == cli.EXIT_BAD_INPUT  # sync
  assert "sync keeps its replay table in process" in _error_line(capsys)
  assert not (tmp_path / "run" / "config.json").exists()


@pytest.mark.parametrize("recorded, asked", [("native", "reverb"), ("reverb", "native")])
def test_resume_refuses_another_replay_backend(tmp_path, capsys, monkeypatch, recorded, asked):
  from repertory.launch.experiment import ExperimentConfig
  from repertory.replay import backends
  monkeypatch.setattr(backends, "reverb_installed", lambda: True)  # the check comes before any server starts
  run = tmp_path / "run"
  run.mkdir()
  ExperimentConfig(agent="dqn", env="gym:CartPole-v1", run_dir=str(run), launcher="thread",
                   replay=recorded).save(str(run / "config.json"))
  before = (run / "config.json").read_text()
  assert _train(tmp_path, "--launcher", "thread", "--resume", "--replay", asked) == cli.EXIT_BAD_INPUT
  assert f"was trained with --replay {recorded}; resume it with --replay {recorded}" in _error_line(capsys)
  assert (run / "config.json").read_text() == before


def _finished_run(tmp_path):
  from repertory.launch.experiment import ExperimentConfig
  run = tmp_path / "run"
  run.mkdir()
  ExperimentConfig(agent="dqn", env="gym:CartPole-v1", run_dir=str(run), launcher="sync",
                   agent_overrides=(("batch_size", "32"),)).save(str(run / "config.json"))
  return run


@pytest.mark.parametrize("extra, message", [
    (("--agent", "der"), "--agent der contradicts the run"),
    (("--env", "gym:Acrobot-v1"), "--env gym:Acrobot-v1 contradicts the run"),
    (("--launcher", "thread"), "--launcher thread contradicts the run"),
    (("--config", "batch_size=64"), "--config batch_size=64 contradicts the run"),
    (("--preset", "alix-paper"), "--preset alix-paper is unknown for the dqn agent"),
])
def test_resume_refuses_flags_that_contradict_the_stored_run(tmp_path, capsys, extra, message):
  run = _finished_run(tmp_path)
  before = (run / "config.json").read_text()
  assert _train(tmp_path, "--resume", *extra) == cli.EXIT_BAD_INPUT
  assert message in _error_line(capsys)
  assert (run / "config.json").read_text() == before


def test_resume_of_a_broken_config_is_one_line(tmp_path, capsys):
  run = tmp_path / "run"
  run.mkdir()
  (run / "config.json").write_text('{"agent": "dqn", ')
  assert _train(tmp_path, "--resume") == cli.EXIT_BAD_INPUT
  assert "is not a readable run config" in _error_line(capsys)


def test_a_copied_run_resumes_in_the_copy(tmp_path):
  import shutil
  from repertory.launch.experiment import ExperimentConfig
  original = tmp_path / "original"
  assert cli.main(["train", "--run-dir", str(original), "--max-actor-steps", "300", "--no-progress",
                   "--eval-every", "300", "--eval-episodes", "1", "--config", "min_replay_size=100"]) == 0
  copy = tmp_path / "copy"
  shutil.copytree(original, copy)
  before = (original / "metrics.csv").read_text()
  assert cli.main(["train", "--run-dir", str(copy), "--resume", "--max-actor-steps", "400", "--no-progress",
                   "--eval-every", "300", "--eval-episodes", "1"]) == 0
  assert (original / "metrics.csv").read_text() == before  # the original is untouched
  assert ExperimentConfig.load(str(copy / "config.json")).run_dir == str(copy)
  assert json.loads((copy / "status.json").read_text())["actor_steps"] == 400


def test_impossible_run_dirs_are_one_line(tmp_path, capsys):
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  for run_dir, message in (("", "--run-dir is empty"), (str(a_file), "is a file, not a folder"),
                           (str(a_file / "run"), "is not a writable folder"),
                           ("/proc/no_such/run", "cannot create --run-dir")):
    assert cli.main(["train", "--run-dir", run_dir, "--max-actor-steps", "100", "--no-progress"]) == cli.EXIT_BAD_INPUT
    assert message in _error_line(capsys)


def test_a_run_with_a_live_driver_is_refused_and_a_dead_drivers_run_resumes(tmp_path, capsys):
  import subprocess
  import time
  run = _finished_run(tmp_path)
  other = subprocess.Popen(["sleep", "60"])
  try:
    (run / "status.json").write_text(json.dumps({"status": "running", "pid": other.pid, "heartbeat": time.time()}))
    for extra in (("--resume",), ("--overwrite",)):
      assert _train(tmp_path, *extra) == cli.EXIT_BAD_INPUT
      assert f"is being trained now by process {other.pid}" in _error_line(capsys)
  finally:
    other.kill()
    other.wait()
  # The same status with its driver gone is stale: --resume continues the run.
  assert _train(tmp_path, "--resume", "--eval-episodes", "1") == 0
  assert json.loads((run / "status.json").read_text())["status"] == "finished"


def _two_checkpoints(tmp_path):
  """A finished run resumed once: two checkpoints (the learner steps at 300 and at 600 actor steps)."""
  flags = ["--no-progress", "--eval-every", "300", "--eval-episodes", "1"]
  run = tmp_path / "run"
  assert cli.main(["train", "--run-dir", str(run), "--max-actor-steps", "300", *flags,
                   "--config", "min_replay_size=100"]) == 0
  assert cli.main(["train", "--run-dir", str(run), "--resume", "--max-actor-steps", "600", *flags]) == 0
  from repertory.utils.checkpointing import saved_steps
  steps = saved_steps(str(run / "checkpoints"))
  assert len(steps) == 2
  return run, steps, flags


def test_a_corrupted_or_incomplete_checkpoint_is_refused_and_the_previous_one_offered(tmp_path, capsys):
  import os
  import shutil
  run, (older, latest), flags = _two_checkpoints(tmp_path)
  status = (run / "status.json").read_text()
  files = [os.path.join(root, f) for root, _, names in os.walk(run / "checkpoints" / str(latest)) for f in names]
  biggest = max(files, key=os.path.getsize)
  data = bytearray(open(biggest, "rb").read())
  data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the weights
  open(biggest, "wb").write(bytes(data))
  capsys.readouterr()
  resume = ["train", "--run-dir", str(run), "--resume", "--max-actor-steps", "700", *flags]
  assert cli.main(resume) == cli.EXIT_BAD_INPUT
  err = _error_line(capsys)
  assert f"checkpoint {latest}" in err and "does not match its checksum" in err and f"from checkpoint {older}" in err
  assert (run / "status.json").read_text() == status  # the finished run's status is left alone
  os.remove(biggest)  # a lost file is refused the same way
  assert cli.main(resume) == cli.EXIT_BAD_INPUT
  assert "does not match its checksum" in _error_line(capsys)
  shutil.rmtree(run / "checkpoints" / str(latest))  # as the message says: resume from the previous one
  assert cli.main(resume) == 0
  assert json.loads((run / "status.json").read_text())["actor_steps"] == 700


@pytest.mark.parametrize("content", ['{"actor_steps": 1', '{"actor_steps": "many"}', '[1, 2]', '{"episodes": -4}'])
def test_an_unreadable_counter_is_one_line(tmp_path, capsys, content):
  run = _finished_run(tmp_path)
  (run / "counter.json").write_text(content)
  assert _train(tmp_path, "--resume") == cli.EXIT_BAD_INPUT
  assert "counter.json' is not a readable step count" in _error_line(capsys)
  assert not (run / "status.json").exists()


def test_a_stored_environment_never_imports_a_module_by_itself(tmp_path, capsys):
  run = _finished_run(tmp_path)
  record = json.loads((run / "config.json").read_text())
  record["env"] = "gym:repertory_no_such_module:Thing-v0"
  (run / "config.json").write_text(json.dumps(record))
  assert _train(tmp_path, "--resume") == cli.EXIT_BAD_INPUT
  err = _error_line(capsys)
  assert "imports module 'repertory_no_such_module'" in err and "pass --env gym:repertory_no_such_module:Thing-v0" in err
  # Given on the command line, the user vouches for it: the import is tried (and fails in one line here).
  assert _train(tmp_path, "--resume", "--env", "gym:repertory_no_such_module:Thing-v0") == cli.EXIT_BAD_INPUT
  assert "cannot import module 'repertory_no_such_module'" in _error_line(capsys)
