"""The services a program's nodes run: actors and the evaluator (the learner is in `learner_node.py`, the
counter in `counter_node.py`, the replay node in `replay_node.py`).

Every service is launcher-agnostic: it talks to other nodes only through the handles it was given,
calling their methods as plain Python calls (the Ray launcher turns those into remote calls with
timeouts). Every wait is bounded; `stop()` ends `run()` within about a second.
"""

import math
import sys
import threading
import time
from typing import Any

import numpy as np

from repertory.agents.environment_loop import EnvironmentLoop, VectorEnvironmentLoop, evaluation_loop
from repertory.environments.specs import EnvironmentSpec
from repertory.launch.counter_node import ACTORS_HELD, CounterService  # noqa: F401 (a node of the program)
from repertory.launch.experiment import ExperimentConfig
from repertory.launch.learner_node import LearnerService  # noqa: F401 (a node of the program)
from repertory.launch.replay_node import ReplayService, make_writer  # noqa: F401 (a node of the program)
from repertory.launch.service import Service

ACTOR_CHUNK = 50  # environment steps an actor takes between talks with the counter
ACTOR_HELD_POLL_S = 0.02  # how often a held actor asks the counter again


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
      if granted == ACTORS_HELD:
        time.sleep(ACTOR_HELD_POLL_S)
        continue
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
    environments = experiment.make_evaluation_environments()
    networks = builder.make_networks(spec)
    self._actor = builder.make_actor(builder.make_policy(networks), RemoteVariableSource(learner),
                                     experiment.seed + 10_000, adder=[None] * len(environments), evaluation=True)
    self._loop = evaluation_loop(environments, self._actor)
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
