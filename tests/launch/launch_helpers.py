"""Shared by the launch tests: run the CLI in a subprocess."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A small, fast DQN: learning starts after 200 transitions.
FAST_DQN = ["--config", "min_replay_size=200", "--config", "batch_size=32", "--config", "samples_per_insert=8"]


def run_cli(*args, timeout=300, env=None):
  """Runs `repertory` in a subprocess; returns (returncode, stdout, stderr)."""
  process = subprocess.run([sys.executable, "-m", "repertory.launch.cli", *args], capture_output=True, text=True,
                           timeout=timeout, cwd=REPO, env=env)
  return process.returncode, process.stdout, process.stderr
