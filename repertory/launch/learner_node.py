"""The learner node: trains on batches from the replay node, publishes parameter versions, checkpoints,
logs to the counter. With `--learner-hosts N` it is N such nodes forming one JAX program
(`learner_processes.py`)."""

import os
import threading
import time
from typing import Any, Optional

from repertory.agents.builder import takes_frames_first
from repertory.environments.specs import EnvironmentSpec
from repertory.launch.experiment import ExperimentConfig
from repertory.launch.learner_processes import LearnerProcesses, wait_for_agreement
from repertory.launch.replay_node import make_sampler
from repertory.launch.service import Service, in_ray_worker

HELD_POLL_S = 0.005  # how often a held learner looks whether it was released


class LearnerService(Service):
  """Trains on batches from the replay node; publishes parameter versions; checkpoints; logs to the counter.

  `resume`: start from checkpoint `restore_step` (default: the latest) where there is one. `process_id`,
  `num_processes` and `coordinator_address` place it among the processes of a multi-host learner (the launcher
  hands out the address); process 0 is the one other nodes talk to."""

  def __init__(self, experiment: ExperimentConfig, spec: EnvironmentSpec, replay: Any, counter: Any,
               publish_period: int = 20, log_every_s: float = 5.0, resume: bool = False,
               restore_step: Optional[int] = None, process_id: int = 0, num_processes: int = 1,
               coordinator_address: Any = None):
    super().__init__()
    self._processes = LearnerProcesses(process_id, num_processes, coordinator_address)
    self._processes.initialize(experiment.node_timeout_s)
    from repertory.utils.checkpointing import Checkpointer
    from repertory.utils.prefetch import Prefetcher
    self._experiment, self._counter = experiment, counter
    self._publish_period, self._log_every_s = publish_period, log_every_s
    builder = experiment.make_builder()
    networks = builder.make_networks(spec)
    devices = experiment.data_parallel()
    self._sampler = make_sampler(replay, devices.local_batch_size(builder.config.batch_size),
                                 frames_first=takes_frames_first(builder))
    self._batches_per_step = getattr(builder.config, "sgd_steps_per_call", 1)
    to_device = lambda batch: batch._replace(data=devices.shard(batch.data))  # split over the devices; keys stay here
    self._data = Prefetcher(self._batches(), buffer_size=max(4, 2 * self._batches_per_step), transform=to_device,
                            timeout_s=1.0, frame_leaves=self._sampler.frame_leaves)
    self._learner = builder.make_learner(networks, spec, self._data, self._sampler.update_priorities, experiment.seed,
                                         data_parallel=devices)
    self._checkpointer = (Checkpointer(os.path.join(experiment.run_dir, "checkpoints"))
                          if self._processes.leader else None)
    self._restored_step = None
    saved = None
    if resume and self._processes.leader and self._checkpointer.latest_step() is not None:
      saved = self._checkpointer.restore(self._learner.state(), step=restore_step)
    saved = self._processes.share(saved, like=self._learner.state())
    if saved is not None:
      self._learner.restore(saved)
      self._restored_step = self._learner.steps
    self._updating = threading.RLock()  # held through each update and each checkpoint: a save never sees half a step
    self._held_until = 0.0  # monotonic time; before it, no update starts (a checkpoint round's instant)
    self._incarnation = time.time_ns()  # versions of a restarted learner never match those of the one before
    self._version = 0
    self._latest: Any = None
    if self._processes.leader:
      counter.set_learner_steps(self._learner.steps)  # a restart without a checkpoint starts again at 0
      self._publish()

  def recovery(self) -> str:
    if self._restored_step is None:
      return "no checkpoint: learner step 0"
    return f"the checkpoint at learner step {self._restored_step}"

  def _batches(self):
    while not self.stopping():
      try:
        yield next(self._sampler)
      except TimeoutError:
        continue  # the rate limiter held data back; look at the stop flag and wait again

  def _publish(self) -> None:
    import jax
    params = jax.device_get(self._learner.get_variables())
    if in_ray_worker():
      import ray
      params = [ray.put(params)]  # in a list, so Ray passes the reference on instead of the value
    self._version += 1
    self._latest = ((self._incarnation, self._version), params)

  def variables(self):
    return self._latest

  def _held(self) -> bool:
    return time.monotonic() < self._held_until

  def _may_step(self) -> bool:
    """Whether to take the next update, once not held: while not stopping; with several processes, once all
    agree (each with its batches buffered, so that no process waits for data inside a collective, and process
    0 not held)."""
    if not self._processes.several:
      while self._held() and not self.stopping():
        time.sleep(HELD_POLL_S)
    return wait_for_agreement(self._processes, lambda: not self._held() and self._data.ready(self._batches_per_step),
                              self.stopping)

  def run(self) -> str:
    from repertory.utils.prefetch import PrefetchTimeout
    last_log = time.monotonic()
    calls_since_log = waits_since_log = 0
    logged_steps = published_steps = self._learner.steps
    leader = self._processes.leader
    try:
      while self._may_step():
        waited = not self._data.ready()
        try:
          with self._updating:
            if self._held() and not self._processes.several:
              continue  # held between the check and the lock
            metrics = self._learner.step()
        except PrefetchTimeout:
          continue
        calls_since_log += 1
        waits_since_log += int(waited)
        diagnostics = self._learner.take_diagnostics()
        if not leader:
          continue
        if diagnostics is not None:
          self._counter.record("diagnostics", diagnostics)
        if self._learner.steps - published_steps >= self._publish_period:
          self._publish()
          published_steps = self._learner.steps
        now = time.monotonic()
        if now - last_log >= self._log_every_s:
          steps_since_log = self._learner.steps - logged_steps
          self._counter.increment(learner_steps=steps_since_log)
          row = {k: float(v) for k, v in metrics.items()}  # the one host sync for logs, once a period
          row.update(steps_per_second=steps_since_log / (now - last_log),
                     data_wait_fraction=waits_since_log / calls_since_log,
                     devices=self._learner.data_parallel.num_devices,
                     processes=self._learner.data_parallel.num_processes)
          self._counter.record("learner", row)
          last_log, calls_since_log, waits_since_log, logged_steps = now, 0, 0, self._learner.steps
    finally:
      self._data.close()
      self._sampler.close()
    if leader:
      self._counter.increment(learner_steps=self._learner.steps - logged_steps)
    return "stopped"

  def save(self, hold_s: float = 0.0) -> int:
    """Checkpoints the learner between two updates (process 0 of a multi-host learner; the others hold the same
    state); the driver calls it for each checkpoint of the run (`distributed.CheckpointRounds`). With `hold_s`,
    the learner's priority updates reach the replay first, and it takes no further update until `release()`
    (or for `hold_s` at most): the replay checkpoint that follows sees the table as this learner state left it."""
    if hold_s:
      self._held_until = time.monotonic() + hold_s
    with self._updating:
      if hold_s:
        self._sampler.flush(timeout_s=hold_s)
      if self._checkpointer is not None:
        self._checkpointer.save(self._learner.steps, self._learner.state())
      return self._learner.steps

  def release(self) -> None:
    self._held_until = 0.0

  def stop(self) -> None:
    super().stop()
    if not self._processes.several:  # several: the processes stop together, at the next agreement
      self._data.close()
