"""One learner made of several processes, one per accelerator host (`--learner-hosts N`).

The processes form one JAX program (`jax.distributed.initialize`, the coordinator being process 0 at the
address the launcher handed out); the data-parallel mesh then spans the devices of every process, each
process samples its share of every global batch from the replay node, and XLA's all-reduce keeps the
replicated parameters equal everywhere. Every process must run the same jitted calls in the same order,
so before each update the processes agree, in one small all-gather, that each has its batches ready and
none is stopping. Process 0 alone publishes parameters, checkpoints (a host copy) and reports to the
counter; a restored checkpoint goes from it to the others.
"""

import dataclasses
import socket
import time
from typing import Any, Optional

import numpy as np

from repertory.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class LearnerProcesses:
  """This process's place among a learner's processes; the default is a learner of one process."""
  process_id: int = 0
  num_processes: int = 1
  coordinator_address: Optional[str] = None  # host:port of process 0's coordination service

  @property
  def leader(self) -> bool:
    return self.process_id == 0

  @property
  def several(self) -> bool:
    return self.num_processes > 1

  def initialize(self, timeout_s: float) -> None:
    """Joins the other processes (before this process uses JAX's devices) within `timeout_s`; one line when
    process 0's coordinator cannot be reached. (Process 0 waiting for a process that never comes is ended
    by the launcher's start timeout.)"""
    if not self.several:
      return
    import jax
    deadline = time.monotonic() + timeout_s
    if not self.leader:  # XLA aborts the process when the coordinator never answers: look for it first
      self._wait_for_coordinator(deadline)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU hosts: collectives over TCP
    jax.distributed.initialize(coordinator_address=self.coordinator_address, num_processes=self.num_processes,
                               process_id=self.process_id,
                               initialization_timeout=max(1, int(deadline - time.monotonic())))

  def _wait_for_coordinator(self, deadline: float) -> None:
    host, _, port = str(self.coordinator_address).rpartition(":")
    while True:
      try:
        with socket.create_connection((host, int(port)), timeout=1.0):
          return
      except (OSError, ValueError):
        if time.monotonic() > deadline:
          break
        time.sleep(0.2)
    raise ConfigError(f"learner process {self.process_id} of {self.num_processes} could not reach the learner's "
                      f"coordinator at {self.coordinator_address} (process 0); check that the learner hosts reach each "
                      "other on that port, or raise --node-timeout")

  def agree_to_step(self, ready: bool, stopping: bool) -> Optional[bool]:
    """Every process's (ready, stopping) gathered: False when one is stopping, True when all are ready, None
    (wait and ask again) otherwise. With one process: whether it may step."""
    if not self.several:
      return False if stopping else True
    from jax.experimental import multihost_utils
    flags = np.asarray(multihost_utils.process_allgather(np.array([ready, stopping], np.int32)))
    if flags[:, 1].any():
      return False
    return True if flags[:, 0].all() else None

  def share(self, tree: Any, like: Any) -> Any:
    """Process 0's `tree` (None or a pytree shaped like `like`) on every process."""
    if not self.several:
      return tree
    import jax
    from jax.experimental import multihost_utils
    present = int(multihost_utils.broadcast_one_to_all(np.int32(tree is not None)))
    if not present:
      return None
    source = tree if self.leader else like
    return multihost_utils.broadcast_one_to_all(jax.tree.map(np.asarray, source))


def wait_for_agreement(processes: LearnerProcesses, ready, stopping, poll_s: float = 0.005) -> bool:
  """Asks until the processes agree: True to take one update, False to stop."""
  while True:
    decision = processes.agree_to_step(ready(), stopping())  # ready before stopping: see LearnerService.run
    if decision is not None:
      return decision
    time.sleep(poll_s)
