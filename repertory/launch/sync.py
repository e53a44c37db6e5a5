"""The `sync` launch type: one process; act and learn interleaved by the replay ratio.

Deterministic on CPU for a seed: one environment (or, with `envs_per_actor` > 1, a vectorised one stepped
with one batched policy call per step), one replay table (not rate-limited), one learner.
"""

import os
from typing import Any, Dict, Optional

import numpy as np

from repertory.agents.builder import learner_steps_per_actor_step
from repertory.agents.environment_loop import EnvironmentLoop, VectorEnvironmentLoop
from repertory.environments.specs import EnvironmentSpec
from repertory.launch.experiment import ExperimentConfig
from repertory.launch.lifetime import raise_if_terminated
from repertory.launch.nodes import CounterService
from repertory.replay.table import Table
from repertory.utils.checkpointing import Checkpointer
from repertory.utils.progress import ProgressLine


def run_sync(experiment: ExperimentConfig, spec: Optional[EnvironmentSpec] = None, resume: bool = False,
             log_every: int = 1_000) -> Dict[str, Any]:
  """Acting, learning and evaluation in one process, deterministic for a seed. `spec`: the run's environment
  spec when the caller has computed it (`experiment.environment_spec()`); else read from the training env."""
  builder = experiment.make_builder()
  if spec is None:
    spec = experiment.environment_spec()
  networks = builder.make_networks(spec)
  replay = Table(builder.table_config(), seed=experiment.seed, rate_limited=False)  # acting and learning alternate
  learner = builder.make_learner(networks, spec, replay.as_iterator(builder.config.batch_size),
                                 replay.update_priorities, experiment.seed, data_parallel=experiment.data_parallel())
  checkpointer = Checkpointer(os.path.join(experiment.run_dir, "checkpoints"))
  counter = CounterService(experiment.run_dir, experiment.max_actor_steps, resume=resume)
  if resume and checkpointer.latest_step() is not None:
    learner.restore(checkpointer.restore(learner.state()))
  policy = builder.make_policy(networks)
  loop, envs = _training_loop(experiment, builder, policy, learner, replay)
  evaluation_environment = experiment.make_environment(seed=experiment.seed + 10_000, evaluation=True)
  evaluator = builder.make_actor(policy, learner, experiment.seed + 10_000, evaluation=True)
  evaluation_loop = EnvironmentLoop(evaluation_environment, evaluator, update_actor=False)

  def evaluate() -> float:
    evaluator.update()
    episodes = evaluation_loop.run_episodes(experiment.eval_episodes)
    mean = float(np.mean([e.episode_return for e in episodes]))
    counter.record("evaluator", {"episode_return": mean, "episodes_evaluated": len(episodes),
                                 "return_std": float(np.std([e.episode_return for e in episodes]))})
    return mean

  progress = ProgressLine(experiment.max_actor_steps, enabled=experiment.progress, label="sync")
  updates_per_step = learner_steps_per_actor_step(builder.config)
  credit, metrics = 0.0, []
  start = int(counter.get()["actor_steps"])
  try:
    step, evaluated_at = start, None
    while step < experiment.max_actor_steps:
      previous, step = step, step + envs  # a vectorised loop may overshoot the budget by < envs steps
      crossed = lambda period: step // period > previous // period
      for episode in loop.run_steps(1):
        counter.increment(episodes=1)
        counter.record("actor", {"episode_return": episode.episode_return, "episode_length": episode.episode_length})
      counter.increment(actor_steps=envs)
      if replay.can_sample(builder.config.batch_size):
        credit += updates_per_step * envs
        before = learner.steps
        while credit >= 1.0:
          metrics.append(learner.step())
          credit -= 1.0
          diagnostics = learner.take_diagnostics()
          if diagnostics is not None:
            counter.record("diagnostics", diagnostics)
        if learner.steps > before:
          counter.increment(learner_steps=learner.steps - before)
      if crossed(log_every) and metrics:
        counter.record("learner", {k: float(np.mean([np.asarray(m[k]) for m in metrics])) for k in metrics[0]})
        metrics = []
      if crossed(experiment.eval_every):
        evaluate()
        evaluated_at = step
      if crossed(5_000):
        checkpointer.save(learner.steps, learner.state())
        counter.save()  # the step count of that checkpoint, for a resume after a crash
      progress.update(counter.get())
      raise_if_terminated()
  except KeyboardInterrupt:  # Ctrl-C or SIGTERM (see training.train_run): keep what was learned, then stop
    checkpointer.save(learner.steps, learner.state())
    counter.increment(learner_steps=learner.steps - int(counter.get()["learner_steps"]))  # the checkpoint's count
    counter.stop()
    checkpointer.close()
    raise
  evaluated = evaluated_at == step or (step == start and step % experiment.eval_every == 0)
  final_evaluation = counter.get()["evaluation_return"] if evaluated else evaluate()
  checkpointer.save(learner.steps, learner.state())
  counts = counter.get()
  counts.update(final_evaluation_return=final_evaluation, learner_steps=learner.steps)
  progress.update(counts, final=True)
  counter.stop()
  checkpointer.close()
  return counts


def _training_loop(experiment: ExperimentConfig, builder: Any, policy: Any, learner: Any, replay: Table):
  """(environment loop, environment steps per loop step): one environment, or `envs_per_actor` stepped
  together (seeded seed, seed + 1, ...) with one adder each."""
  envs = experiment.envs_per_actor
  if envs == 1:
    actor = builder.make_actor(policy, learner, experiment.seed, adder=builder.make_adder(replay))
    return EnvironmentLoop(experiment.make_environment(seed=experiment.seed), actor), 1
  actor = builder.make_actor(policy, learner, experiment.seed, adder=[builder.make_adder(replay) for _ in range(envs)])
  return VectorEnvironmentLoop(experiment.make_vector_environment(seed=experiment.seed), actor), envs
