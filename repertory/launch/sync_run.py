"""One run of the `sync` launch type: its replay, learner, counter, checkpoints, actors and evaluator, and
the bookkeeping of one loop step (episodes, replay-ratio credit, logging, evaluation, checkpoints).

The loops in `sync.py` drive it: one run alone, or several in one process sharing a vmapped learner and
policy call; a run's sequence of operations is the same either way.
"""

import os
from typing import Any, Dict, List, Optional

import numpy as np

from repertory.agents.builder import learner_steps_per_actor_step
from repertory.agents.environment_loop import EnvironmentLoop, EpisodeStats, VectorEnvironmentLoop
from repertory.environments.specs import EnvironmentSpec
from repertory.launch.experiment import ExperimentConfig
from repertory.launch.nodes import CounterService
from repertory.replay.table import Table
from repertory.utils.checkpointing import Checkpointer
from repertory.utils.progress import ProgressLine

CHECKPOINT_EVERY_STEPS = 5_000


class SyncRun:
  """Built in two stages: `__init__` makes the run's own learner (which `attach` may replace by its member of
  a stacked learner), `attach` restores a checkpoint and builds what acts with the learner."""

  def __init__(self, experiment: ExperimentConfig, spec: Optional[EnvironmentSpec] = None, resume: bool = False,
               log_every: int = 1_000):
    self.experiment, self.resume, self.log_every = experiment, resume, log_every
    self.builder = builder = experiment.make_builder()
    self.spec = spec if spec is not None else experiment.environment_spec()
    self.networks = builder.make_networks(self.spec)
    self.replay = Table(builder.table_config(), seed=experiment.seed, rate_limited=False)  # acting and learning alternate
    self.learner = builder.make_learner(self.networks, self.spec, self.replay.as_iterator(builder.config.batch_size),
                                        self.replay.update_priorities, experiment.seed,
                                        data_parallel=experiment.data_parallel())
    self.checkpointer = Checkpointer(os.path.join(experiment.run_dir, "checkpoints"))
    self.counter = CounterService(experiment.run_dir, experiment.max_actor_steps, resume=resume)
    self.restored = False  # until `attach` has restored the checkpoint to resume from (or had none to restore)

  def attach(self, learner: Any, update_actor: bool = True) -> None:
    """Trains with `learner` from here on; `update_actor=False`: the actor's parameters come from the caller."""
    experiment, builder = self.experiment, self.builder
    self.learner = learner
    if self.resume and self.checkpointer.latest_step() is not None:
      learner.restore(self.checkpointer.restore(learner.state()))
    self.restored = True
    self.policy = builder.make_policy(self.networks)
    self.envs = experiment.envs_per_actor
    adders = builder.make_adder(self.replay) if self.envs == 1 else [builder.make_adder(self.replay)
                                                                     for _ in range(self.envs)]
    self.actor = builder.make_actor(self.policy, learner, experiment.seed, adder=adders)
    if self.envs == 1:
      self.loop = EnvironmentLoop(experiment.make_environment(seed=experiment.seed), self.actor, update_actor)
    else:
      self.loop = VectorEnvironmentLoop(experiment.make_vector_environment(seed=experiment.seed), self.actor,
                                        update_actor)
    evaluation_environment = experiment.make_environment(seed=experiment.seed + 10_000, evaluation=True)
    self.evaluator = builder.make_actor(self.policy, learner, experiment.seed + 10_000, evaluation=True)
    self.evaluation_loop = EnvironmentLoop(evaluation_environment, self.evaluator, update_actor=False)
    self.progress = ProgressLine(experiment.max_actor_steps, enabled=experiment.progress, label="sync")
    self.updates_per_step = learner_steps_per_actor_step(builder.config)
    self.credit, self.metrics = 0.0, []
    self.start = self.step = int(self.counter.get()["actor_steps"])
    self.previous, self.evaluated_at, self.steps_before = self.step, None, learner.steps

  @property
  def done(self) -> bool:
    return self.step >= self.experiment.max_actor_steps

  def evaluate(self) -> float:
    self.evaluator.update()
    episodes = self.evaluation_loop.run_episodes(self.experiment.eval_episodes)
    mean = float(np.mean([e.episode_return for e in episodes]))
    self.counter.record("evaluator", {"episode_return": mean, "episodes_evaluated": len(episodes),
                                      "return_std": float(np.std([e.episode_return for e in episodes]))})
    return mean

  def acted(self, finished: List[EpisodeStats]) -> None:
    """After the loop step's environment steps: count them and their episodes, earn update credit."""
    self.previous, self.step = self.step, self.step + self.envs  # a vectorised loop may overshoot by < envs steps
    for episode in finished:
      self.counter.increment(episodes=1)
      self.counter.record("actor", {"episode_return": episode.episode_return, "episode_length": episode.episode_length})
    self.counter.increment(actor_steps=self.envs)
    self.steps_before = self.learner.steps
    if self.replay.can_sample(self.builder.config.batch_size):
      self.credit += self.updates_per_step * self.envs

  @property
  def wants_update(self) -> bool:
    return self.credit >= 1.0

  def learned(self, metrics: Dict[str, Any]) -> None:
    self.metrics.append(metrics)
    self.credit -= 1.0
    diagnostics = self.learner.take_diagnostics()
    if diagnostics is not None:
      self.counter.record("diagnostics", diagnostics)

  def finish_step(self) -> None:
    """After the loop step's updates: count them, log, evaluate and checkpoint when their periods come."""
    counter, step = self.counter, self.step
    crossed = lambda period: step // period > self.previous // period  # noqa: E731
    if self.learner.steps > self.steps_before:
      counter.increment(learner_steps=self.learner.steps - self.steps_before)
    if crossed(self.log_every) and self.metrics:
      counter.record("learner", {k: float(np.mean([np.asarray(m[k]) for m in self.metrics])) for k in self.metrics[0]})
      self.metrics = []
    if crossed(self.experiment.eval_every):
      self.evaluate()
      self.evaluated_at = step
    if crossed(CHECKPOINT_EVERY_STEPS):
      self.checkpointer.save(self.learner.steps, self.learner.state())
      counter.save()  # the step count of that checkpoint, for a resume after a crash
    self.progress.update(counter.get())

  def interrupted(self) -> None:
    """Ctrl-C or SIGTERM (see training.train_run): keep what was learned, then stop (also before `attach` ended;
    before the restore, the checkpoint on disk is still the one to resume from)."""
    if self.restored:
      self.checkpointer.save(self.learner.steps, self.learner.state())
      self.counter.increment(learner_steps=self.learner.steps - int(self.counter.get()["learner_steps"]))
    self.counter.stop()
    self.checkpointer.close()

  def finish(self) -> Dict[str, Any]:
    """The final evaluation (unless the last step had one), the last checkpoint; the run's counts."""
    step, experiment = self.step, self.experiment
    evaluated = self.evaluated_at == step or (step == self.start and step % experiment.eval_every == 0)
    final_evaluation = self.counter.get()["evaluation_return"] if evaluated else self.evaluate()
    self.checkpointer.save(self.learner.steps, self.learner.state())
    counts = self.counter.get()
    counts.update(final_evaluation_return=final_evaluation, learner_steps=self.learner.steps)
    self.progress.update(counts, final=True)
    self.counter.stop()
    self.checkpointer.close()
    return counts
