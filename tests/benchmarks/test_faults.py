"""`repertory bench faults`: bad settings are one line before anything runs (the soak itself is measured by
tests/launch/test_ray_integration.py's kill tests and recorded in benchmarks/results/faults/)."""

import pytest

from repertory import cli


@pytest.mark.parametrize("flags, message", [
    (("--nodes", "replay,bogus"), "--nodes: unknown node kind(s) bogus; choose from replay, learner"),
    (("--nodes", ","), "--nodes: unknown node kind(s) (none given)"),
    (("--kills", "0"), "--kills, --kill-every-s, --num-actors and --max-actor-steps must be positive"),
    (("--report-only",), "the faults benchmark measures as it runs"),
])
def test_bad_settings_are_one_line_and_nothing_is_written(tmp_path, capsys, flags, message):
  out = tmp_path / "faults"
  assert cli.main(["bench", "faults", "--out", str(out), "--no-progress", *flags]) == cli.EXIT_BAD_INPUT
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and message in err, err
  assert not out.exists()
