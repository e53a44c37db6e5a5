"""One run of the `sync` launch type: its replay, learner, counter, checkpoints, actors and evaluator, and
the bookkeeping of one loop step (episodes, replay-ratio credit, logging, evaluation, checkpoints).

The loops in `sync.py` drive it: one run alone, or several in one process sharing a vmapped learner and
policy call; a run's sequence of operations is the same either way.

Checkpoints make a resume exact. Each one is the learner's (orbax, `checkpoints/<learner step>`) and,
written just before it, the rest of the run in `resume_state/<learner step>.state` (`utils.snapshots`):
the replay table, the counter, the actors' keys, parameters and adders, the episodes in progress (the
environments are brought back by replaying their recorded resets and actions into fresh ones, made with
the same seed), the replay-ratio credit and the count of metrics.csv rows, so that a resume drops the
rows written after the checkpoint. A run that finishes deletes its resume states (they hold the replay).
"""

import os
import shutil
import time
from typing import Any, Dict, List, Optional

import numpy as np

from repertory.agents.builder import learner_steps_per_actor_step, takes_frames_first
from repertory.agents.environment_loop import EnvironmentLoop, EpisodeStats, VectorEnvironmentLoop, evaluation_loop
from repertory.environments.specs import EnvironmentSpec
from repertory.launch.experiment import ExperimentConfig
from repertory.launch.lifetime import checkpoint_being_written
from repertory.launch.counter_node import CounterService
from repertory.replay.table import Table
from repertory.utils import snapshots
from repertory.utils.checkpointing import Checkpointer, saved_steps
from repertory.utils.progress import ProgressLine
from repertory.utils.timing import PhaseClock


def resume_state_path(run_dir: str, learner_step: int) -> str:
  """Where the run state saved with learner checkpoint `learner_step` lies."""
  return os.path.join(run_dir, "resume_state", f"{learner_step}.state")


class SyncRun:
  """Built in two stages: `__init__` makes the run's own learner (which `attach` may replace by its member of
  a stacked learner), `attach` restores a checkpoint and builds what acts with the learner."""

  SNAPSHOT_FIELDS = ("credit", "metrics", "evaluated_at", "counter", "actor", "loop", "evaluator", "evaluation_loop")

  def __init__(self, experiment: ExperimentConfig, spec: Optional[EnvironmentSpec] = None, resume: bool = False,
               log_every: int = 1_000):
    self.experiment, self.resume, self.log_every = experiment, resume, log_every
    self.builder = builder = experiment.make_builder()
    self.spec = spec if spec is not None else experiment.environment_spec()
    self.networks = builder.make_networks(self.spec)
    self.replay = Table(builder.table_config(), seed=experiment.seed, rate_limited=False)  # acting and learning alternate
    batches = self.replay.as_iterator(builder.config.batch_size, frames_first=takes_frames_first(builder))
    self.learner = builder.make_learner(self.networks, self.spec, batches,
                                        self.replay.update_priorities, experiment.seed,
                                        data_parallel=experiment.data_parallel())
    self.checkpointer = Checkpointer(os.path.join(experiment.run_dir, "checkpoints"))
    self.resume_dir = os.path.dirname(resume_state_path(experiment.run_dir, 0))
    self.counter = CounterService(experiment.run_dir, experiment.max_actor_steps, resume=resume)
    self.restored = False  # until `attach` has restored the checkpoint to resume from (or had none to restore)

  def attach(self, learner: Any, update_actor: bool = True) -> None:
    """Trains with `learner` from here on; `update_actor=False`: the actor's parameters come from the caller."""
    experiment, builder = self.experiment, self.builder
    self.learner = learner
    restored_step = self.checkpointer.latest_step() if self.resume else None
    if restored_step is not None:
      learner.restore(self.checkpointer.restore(learner.state(), restored_step))
    self.policy = builder.make_policy(self.networks)
    self.envs = experiment.envs_per_actor
    adders = builder.make_adder(self.replay) if self.envs == 1 else [builder.make_adder(self.replay)
                                                                     for _ in range(self.envs)]
    self.actor = builder.make_actor(self.policy, learner, experiment.seed, adder=adders)
    if self.envs == 1:
      self.loop = EnvironmentLoop(experiment.make_environment(seed=experiment.seed), self.actor, update_actor,
                                  record=True)
    else:
      self.loop = VectorEnvironmentLoop(experiment.make_vector_environment(seed=experiment.seed), self.actor,
                                        update_actor, record=True)
    evaluation_environments = experiment.make_evaluation_environments()
    self.evaluator = builder.make_actor(self.policy, learner, experiment.seed + 10_000, evaluation=True,
                                        adder=[None] * len(evaluation_environments))
    self.evaluation_loop = evaluation_loop(evaluation_environments, self.evaluator, record=True)
    self.clock = PhaseClock()  # policy, environment, learning, evaluation, checkpoints: <phase>_s in the counts
    self.loop.clock = self.clock
    self.progress = ProgressLine(experiment.max_actor_steps, enabled=experiment.progress, label="sync")
    self.updates_per_step = learner_steps_per_actor_step(builder.config)
    self.credit, self.metrics, self.evaluated_at = 0.0, [], None
    if restored_step is not None:
      self._restore_state(restored_step)
    self.restored = True
    self.start = self.step = int(self.counter.get()["actor_steps"])
    self.previous, self.steps_before, self.saved_at = self.step, learner.steps, time.monotonic()

  def _restore_state(self, learner_step: int) -> None:
    """The rest of the run as it was at the learner checkpoint; without a saved state (a checkpoint written
    before they were, or a finished run continued) the replay and environments start afresh."""
    path = resume_state_path(self.experiment.run_dir, learner_step)
    if not os.path.exists(path):
      print(f"repertory: no saved run state beside learner checkpoint {learner_step}; the replay and the "
            "environments start afresh", flush=True)
      return
    state = snapshots.read(path)
    arrays, meta = state["replay"]
    self.replay.load_state(arrays, meta, path)
    snapshots.restore(self, state["run"])
    self.loop.replay_environment()
    self.evaluation_loop.replay_environment()

  def save(self) -> None:
    """One consistent checkpoint: the run state, then the learner's (whose presence completes it), then
    counter.json; the states of learner checkpoints no longer kept are deleted."""
    step = self.learner.steps
    self.counter.increment(**self.clock.take())
    with checkpoint_being_written(), self.clock.phase("checkpoints"):
      os.makedirs(self.resume_dir, exist_ok=True)
      state = {"replay": self.replay.state(), "run": snapshots.capture(self)}
      snapshots.write(resume_state_path(self.experiment.run_dir, step), state)
      self.checkpointer.save(step, self.learner.state())
      self.counter.save()
    self.saved_at = time.monotonic()
    kept = {f"{s}.state" for s in saved_steps(self.checkpointer.directory)}
    for name in os.listdir(self.resume_dir):
      if name not in kept:
        os.remove(os.path.join(self.resume_dir, name))

  @property
  def done(self) -> bool:
    return self.step >= self.experiment.max_actor_steps

  def evaluate(self) -> float:
    self.evaluator.update()
    with self.clock.phase("evaluation"):
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
    if crossed(self.log_every):
      counter.increment(**self.clock.take())
      if self.metrics:
        means = {k: float(np.mean([np.asarray(m[k]) for m in self.metrics])) for k in self.metrics[0]}
        counter.record("learner", means)
        self.metrics = []
    if crossed(self.experiment.eval_every):
      self.evaluate()
      self.evaluated_at = step
    if crossed(self.experiment.checkpoint_every) or time.monotonic() - self.saved_at >= self.experiment.checkpoint_every_s:
      self.save()
    self.progress.update(counter.get())

  def interrupted(self, at_step_boundary: bool) -> None:
    """Ctrl-C or SIGTERM (see training.train_run). Taken between two steps (`lifetime.signals_at_step_boundaries`)
    the run is checkpointed; elsewhere (a second signal) its state may be half-way through a step, so the
    last checkpoint stays the one to resume from."""
    if self.restored and at_step_boundary:
      self.save()
    self.counter.stop()
    self.checkpointer.close()

  def finish(self) -> Dict[str, Any]:
    """The final evaluation (unless the last step had one), the last checkpoint; the run's counts."""
    step, experiment = self.step, self.experiment
    evaluated = self.evaluated_at == step or (step == self.start and step % experiment.eval_every == 0)
    final_evaluation = self.counter.get()["evaluation_return"] if evaluated else self.evaluate()
    with self.clock.phase("checkpoints"):
      self.checkpointer.save(self.learner.steps, self.learner.state())
    shutil.rmtree(self.resume_dir, ignore_errors=True)
    self.counter.increment(**self.clock.take())
    counts = self.counter.get()
    counts.update(final_evaluation_return=final_evaluation, learner_steps=self.learner.steps)
    self.progress.update(counts, final=True)
    self.counter.stop()
    self.checkpointer.close()
    return counts
