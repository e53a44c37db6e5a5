"""`sync` runs work where Reverb, TensorFlow and Ray cannot be imported (as on the GPU hosts)."""

import subprocess
import sys

CODE = """
import importlib.machinery
import sys


class PathFinderWithout(importlib.machinery.PathFinder):
  # Finds modules as usual, except that Reverb, TensorFlow and Ray look not installed.

  @classmethod
  def find_spec(cls, name, path=None, target=None):
    if name.split(".")[0] in ("reverb", "tensorflow", "ray"):
      return None
    return importlib.machinery.PathFinder.find_spec(name, path, target)


sys.meta_path = [PathFinderWithout if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
from repertory import cli
sys.exit(cli.main(["train", "--launcher", "sync", "--max-actor-steps", "300", "--eval-every", "300",
                   "--eval-episodes", "1", "--run-dir", sys.argv[1], "--no-progress", "--config", "min_replay_size=100"]))
"""


def test_sync_run_needs_no_reverb_tensorflow_or_ray(tmp_path):
  out = subprocess.run([sys.executable, "-c", CODE, str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "finished: 300 actor steps" in out.stdout
