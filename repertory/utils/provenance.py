"""Where and when a result was measured: machine, commit, date (recorded beside every benchmark)."""

import os
import platform
import subprocess
import time
from typing import Dict


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def commit() -> str:
  try:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           timeout=5, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def provenance() -> Dict[str, str]:
  import jax
  return {
      "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
      "commit": commit(),
      "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, {_cpu_model()}",
      "python": platform.python_version(),
      "jax": jax.__version__,
      "jax_devices": ", ".join(str(d) for d in jax.devices()),
  }
