"""The `sync` launch type: one process; act and learn interleaved by the replay ratio.

Deterministic on CPU for a seed: one environment, one replay table (not rate-limited), one learner.
"""

import os
from typing import Any, Dict, Optional

import numpy as np

from repertory.agents.builder import learner_steps_per_actor_step
from repertory.agents.environment_loop import EnvironmentLoop
from repertory.environments.specs import EnvironmentSpec, make_environment_spec
from repertory.launch.experiment import ExperimentConfig
from repertory.launch.nodes import CounterService
from repertory.replay.table import Table
from repertory.utils.checkpointing import Checkpointer
from repertory.utils.progress import ProgressLine


def run_sync(experiment: ExperimentConfig, spec: Optional[EnvironmentSpec] = None, resume: bool = False,
             log_every: int = 1_000) -> Dict[str, Any]:
  """Acting, learning and evaluation in one process, deterministic for a seed. `spec`: the run's environment
  spec when the caller has computed it (`experiment.environment_spec()`); else read from the training env."""
  builder = experiment.make_builder()
  environment = experiment.make_environment(seed=experiment.seed)
  if spec is None:
    spec = make_environment_spec(environment)
    builder.check_environment(spec)
  networks = builder.make_networks(spec)
  replay = Table(builder.table_config(), seed=experiment.seed, rate_limited=False)  # acting and learning alternate
  learner = builder.make_learner(networks, spec, replay.as_iterator(builder.config.batch_size),
                                 replay.update_priorities, experiment.seed)
  checkpointer = Checkpointer(os.path.join(experiment.run_dir, "checkpoints"))
  counter = CounterService(experiment.run_dir, experiment.max_actor_steps, resume=resume)
  if resume and checkpointer.latest_step() is not None:
    learner.restore(checkpointer.restore(learner.state()))
  policy = builder.make_policy(networks)
  actor = builder.make_actor(policy, learner, experiment.seed, adder=builder.make_adder(replay))
  loop = EnvironmentLoop(environment, actor)
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
    for step in range(start + 1, experiment.max_actor_steps + 1):
      for episode in loop.run_steps(1):
        counter.increment(episodes=1)
        counter.record("actor", {"episode_return": episode.episode_return, "episode_length": episode.episode_length})
      counter.increment(actor_steps=1)
      if replay.can_sample(builder.config.batch_size):
        credit += updates_per_step
        before = learner.steps
        while credit >= 1.0:
          metrics.append(learner.step())
          credit -= 1.0
        if learner.steps > before:
          counter.increment(learner_steps=learner.steps - before)
      if step % log_every == 0 and metrics:
        counter.record("learner", {k: float(np.mean([np.asarray(m[k]) for m in metrics])) for k in metrics[0]})
        metrics = []
      if step % experiment.eval_every == 0:
        evaluate()
      if step % 5_000 == 0:
        checkpointer.save(learner.steps, learner.state())
        counter.save()  # the step count of that checkpoint, for a resume after a crash
      progress.update(counter.get())
  except KeyboardInterrupt:  # Ctrl-C or SIGTERM (see cli.train): keep what was learned, then stop
    checkpointer.save(learner.steps, learner.state())
    counter.increment(learner_steps=learner.steps - int(counter.get()["learner_steps"]))  # the checkpoint's count
    counter.stop()
    checkpointer.close()
    raise
  final_evaluation = evaluate() if experiment.max_actor_steps % experiment.eval_every else counter.get()["evaluation_return"]
  checkpointer.save(learner.steps, learner.state())
  counts = counter.get()
  counts.update(final_evaluation_return=final_evaluation, learner_steps=learner.steps)
  progress.update(counts, final=True)
  counter.stop()
  checkpointer.close()
  return counts
