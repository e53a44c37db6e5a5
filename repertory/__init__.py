"""repertory: a distributed reinforcement-learning agent platform (JAX, Haiku, Reverb, Ray)."""

import os as _os
from importlib import metadata as _metadata

__version__ = "0.1.0"


def _prefer_fast_xla_cpu_runtime() -> None:
  """jaxlib 0.4.3x runs convolutions and their gradients ~6× slower on the new XLA:CPU thunk runtime
  (measured: DQN Nature-CNN update, batch 64, 3.0 s → 0.5 s on 2 cores; BUILD_NOTES.md). Use the
  classic runtime there; newer jaxlib (the GPU hosts) is left alone since it rejects the flag."""
  try:
    major, minor = (int(x) for x in _metadata.version("jaxlib").split(".")[:2])
  except (_metadata.PackageNotFoundError, ValueError):
    return
  flags = _os.environ.get("XLA_FLAGS", "")
  if (major, minor) == (0, 4) and "xla_cpu_use_thunk_runtime" not in flags:
    _os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_use_thunk_runtime=false").strip()


_prefer_fast_xla_cpu_runtime()
