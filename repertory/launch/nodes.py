"""The services a program's nodes run: learner, actors, evaluator (the counter is in `counter_node.py`, the
replay node in `replay_node.py`).

Every service is launcher-agnostic: it talks to other nodes only through the handles it was given,
calling their methods as plain Python calls (the Ray launcher turns those into remote calls with
timeouts). Every wait is bounded; `stop()` ends `run()` within about a second.
"""

import math
import os
import sys
import threading
import time
from typing import Any

import numpy as np

from repertory.agents.environment_loop import EnvironmentLoop, VectorEnvironmentLoop
from repertory.environments.specs import EnvironmentSpec
from repertory.launch.counter_node import CounterService  # noqa: F401 (a node of the program)
from repertory.launch.experiment import ExperimentConfig
from repertory.launch.replay_node import ReplayService, make_sampler, make_writer  # noqa: F401 (a node of the program)
from repertory.launch.service import Service, in_ray_worker

ACTOR_CHUNK = 50  # environment steps an actor takes between talks with the counter


class RemoteVariableSource:
  """Fetches `(version, params)` from the learner and keeps the copy until the version changes.

  On Ray the learner hands out an object-store reference: each host fetches a version once.
  """

  def __init__(self, learner: Any):
    self._learner = learner
    self._version = -1
    self._params = None

  def get_variables(self) -> Any:
    version, payload = self._learner.variables()
    if version != self._version:
      ray = sys.modules.get("ray")
      if ray is not None and isinstance(payload, list) and payload and isinstance(payload[0], ray.ObjectRef):
        payload = ray.get(payload[0], timeout=120)
      self._version, self._params = version, payload
    return self._params


class LearnerService(Service):
  """Trains on batches from the replay node; publishes parameter versions; checkpoints; logs to the counter."""

  def __init__(self, experiment: ExperimentConfig, spec: EnvironmentSpec, replay: Any, counter: Any,
               publish_period: int = 20, log_every_s: float = 5.0, resume: bool = False):
    super().__init__()
    from repertory.utils.checkpointing import Checkpointer
    from repertory.utils.prefetch import Prefetcher
    self._experiment, self._counter = experiment, counter
    self._publish_period, self._log_every_s = publish_period, log_every_s
    builder = experiment.make_builder()
    networks = builder.make_networks(spec)
    self._sampler = make_sampler(replay, builder.config.batch_size)
    devices = experiment.data_parallel()
    to_device = lambda batch: batch._replace(data=devices.shard(batch.data))  # split over the devices; keys stay here
    self._data = Prefetcher(self._batches(), buffer_size=4, transform=to_device, timeout_s=1.0)
    self._learner = builder.make_learner(networks, spec, self._data, self._sampler.update_priorities, experiment.seed,
                                         data_parallel=devices)
    self._checkpointer = Checkpointer(os.path.join(experiment.run_dir, "checkpoints"))
    self._restored_step = None
    if resume and self._checkpointer.latest_step() is not None:
      self._learner.restore(self._checkpointer.restore(self._learner.state()))
      self._restored_step = self._learner.steps
    counter.set_learner_steps(self._learner.steps)  # a restart without a checkpoint starts again at 0
    self._incarnation = time.time_ns()  # versions of a restarted learner never match those of the one before
    self._version = 0
    self._latest: Any = None
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

  def run(self) -> str:
    from repertory.utils.prefetch import PrefetchTimeout
    last_log = last_checkpoint = time.monotonic()
    calls_since_log = waits_since_log = 0
    logged_steps = published_steps = self._learner.steps
    while not self.stopping():
      waited = not self._data.ready()
      try:
        metrics = self._learner.step()
      except PrefetchTimeout:
        continue
      calls_since_log += 1
      waits_since_log += int(waited)
      diagnostics = self._learner.take_diagnostics()
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
                   data_wait_fraction=waits_since_log / calls_since_log)
        self._counter.record("learner", row)
        last_log, calls_since_log, waits_since_log, logged_steps = now, 0, 0, self._learner.steps
      if now - last_checkpoint >= self._experiment.checkpoint_every_s:
        self.save()
        last_checkpoint = now
    self._counter.increment(learner_steps=self._learner.steps - logged_steps)
    return "stopped"

  def save(self) -> int:
    self._checkpointer.save(self._learner.steps, self._learner.state())
    return self._learner.steps

  def stop(self) -> None:
    super().stop()
    self._data.close()


class ActorService(Service):
  """Steps one environment with the latest parameters and writes its items into the replay node."""

  def __init__(self, experiment: ExperimentConfig, spec: EnvironmentSpec, replay: Any, learner: Any, counter: Any,
               actor_id: int):
    super().__init__()
    self._counter, self._actor_id = counter, actor_id
    seed = experiment.seed * 1000 + actor_id * experiment.envs_per_actor + 1
    builder = experiment.make_builder()
    networks = builder.make_networks(spec)
    self._writer = make_writer(replay)
    self._envs = experiment.envs_per_actor
    if self._envs == 1:
      adder = builder.make_adder(self._writer)
      environment, loop_class = experiment.make_environment(seed=seed), EnvironmentLoop
    else:
      adder = [builder.make_adder(self._writer) for _ in range(self._envs)]
      environment, loop_class = experiment.make_vector_environment(seed), VectorEnvironmentLoop
    actor = builder.make_actor(builder.make_policy(networks), RemoteVariableSource(learner), seed, adder=adder)
    self._loop = loop_class(environment, actor)

  def run(self) -> str:
    while not self.stopping():
      granted = self._counter.reserve_actor_steps(self._actor_id, max(ACTOR_CHUNK, self._envs))
      if granted == 0:
        return "budget reached"
      batches = max(1, granted // self._envs)  # a vectorised actor may overshoot the last chunk by < envs
      episodes = self._loop.run_steps(batches)
      granted = batches * self._envs
      while not self.stopping():
        try:
          self._writer.flush()
          break
        except Exception:  # the rate limiter holds inserts while the learner catches up
          continue
      self._counter.increment(actor_id=self._actor_id, actor_steps=granted, episodes=len(episodes))
      for episode in episodes:
        self._counter.record("actor", {"actor_id": self._actor_id, "episode_return": episode.episode_return,
                                       "episode_length": episode.episode_length})
    return "stopped"


class EvaluatorService(Service):
  """Every `eval_every` actor steps, runs `eval_episodes` greedy-ish episodes on its own environment."""

  def __init__(self, experiment: ExperimentConfig, spec: EnvironmentSpec, learner: Any, counter: Any):
    super().__init__()
    self._experiment, self._counter = experiment, counter
    builder = experiment.make_builder()
    environment = experiment.make_environment(seed=experiment.seed + 10_000, evaluation=True)
    networks = builder.make_networks(spec)
    self._actor = builder.make_actor(builder.make_policy(networks), RemoteVariableSource(learner),
                                     experiment.seed + 10_000, adder=None, evaluation=True)
    self._loop = EnvironmentLoop(environment, self._actor, update_actor=False)
    self._lock = threading.Lock()
    done = int(counter.get()["actor_steps"])  # a restarted or resumed evaluator waits for the next period
    self._next = (done // experiment.eval_every + 1) * experiment.eval_every

  def evaluate(self) -> float:
    with self._lock:
      self._actor.update()
      episodes = self._loop.run_episodes(self._experiment.eval_episodes, max_seconds=self._experiment.node_timeout_s / 2)
      returns = [e.episode_return for e in episodes]
      mean = float(np.mean(returns)) if returns else math.nan
      self._counter.record("evaluator", {"episode_return": mean, "episodes_evaluated": len(returns),
                                         "return_std": float(np.std(returns)) if returns else math.nan})
      return mean

  def run(self) -> str:
    """Evaluates every `eval_every` actor steps before the budget; the driver runs the final evaluation."""
    while not self.stopping():
      if self._counter.get()["actor_steps"] >= self._next and self._next < self._experiment.max_actor_steps:
        self.evaluate()
        self._next += self._experiment.eval_every
      else:
        self._stop_event.wait(0.5)
    return "stopped"
