"""The `sync` launch type: one process; act and learn interleaved by the replay ratio.

Deterministic on CPU for a seed: one environment (or, with `envs_per_actor` > 1, a vectorised one stepped
with one batched policy call per step), one replay table (not rate-limited), one learner.

`run_sync_group` trains K such runs in one process (many runs, one program: Atari 100k at suite scale):
one vmapped learner update over the K training states (`agents.stacked_learner`) and one vmapped policy
call for the K environments per step, each run with its own replay, counter, checkpoints and evaluator.
A run's results are those it gets alone: it takes the same steps, samples and keys in the same order.
"""

from typing import Any, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from repertory.environments.specs import EnvironmentSpec
from repertory.errors import ConfigError
from repertory.launch.experiment import ExperimentConfig
from repertory.launch.lifetime import raise_if_terminated, signals_at_step_boundaries
from repertory.launch.sync_run import SyncRun
from repertory.utils.memory import keep_freed_memory
from repertory.utils.timing import timed


def run_sync(experiment: ExperimentConfig, spec: Optional[EnvironmentSpec] = None, resume: bool = False,
             log_every: int = 1_000) -> Dict[str, Any]:
  """Acting, learning and evaluation in one process, deterministic for a seed. `spec`: the run's environment
  spec when the caller has computed it (`experiment.environment_spec()`); else read from the training env."""
  keep_freed_memory()
  with signals_at_step_boundaries():  # a signal while the run is built is taken after that: it is checkpointed
    run = SyncRun(experiment, spec, resume, log_every)
    try:
      run.attach(run.learner)
      raise_if_terminated()
      while not run.done:
        run.acted(run.loop.run_steps(1))
        with run.clock.phase("learning"):
          while run.wants_update:
            run.learned(run.learner.step())
        run.finish_step()
        raise_if_terminated()
    except KeyboardInterrupt as interrupt:
      run.interrupted(getattr(interrupt, "at_step_boundary", False))
      raise
    return run.finish()


def check_group(experiments: Sequence[ExperimentConfig]) -> None:
  """One line for runs that cannot share one process: they must differ only in seed, environment and run dir."""
  import dataclasses
  first = experiments[0]
  for experiment in experiments[1:]:
    same = dataclasses.replace(experiment, seed=first.seed, env=first.env, run_dir=first.run_dir)
    if same != first:
      raise ConfigError("runs in one process must share agent, config and budgets (they may differ in seed and game)")
  if first.launcher != "sync":
    raise ConfigError(f"several runs in one process need the sync launcher, not '{first.launcher}'")
  if first.envs_per_actor != 1:
    raise ConfigError("several runs in one process step one environment each; use --envs-per-actor 1")
  from repertory.agents.stacked_learner import check_stackable
  check_stackable(first.make_builder().config)


class GroupPolicy:
  """One vmapped policy call for the K runs' environments; each run's actor supplies its own key and ε."""

  def __init__(self, actors: Sequence[Any]):
    self._actors = actors
    self._policy = jax.jit(jax.vmap(actors[0].policy))
    self._split = jax.jit(jax.vmap(jax.random.split))  # every actor's key in one call (the same bits as one by one)
    self._idle_key = np.asarray(jax.random.PRNGKey(0))

  def select(self, variables: Any, observations: List[Optional[np.ndarray]]) -> np.ndarray:
    """Actions [K] for the observations of the runs still acting (None for a run that has finished)."""
    template = next(o for o in observations if o is not None)
    splits = np.asarray(self._split(np.stack([np.asarray(actor.key) for actor in self._actors])))
    keys, epsilons = [], []
    for actor, observation, split in zip(self._actors, observations, splits):
      key, epsilon = actor.policy_inputs((split[0], split[1])) if observation is not None else (self._idle_key, 0.0)
      keys.append(key)
      epsilons.append(epsilon)
    stacked = np.stack([(o if o is not None else np.zeros_like(template))[None] for o in observations])
    actions = self._policy(variables, np.stack(keys), stacked, np.asarray(epsilons, np.float32))
    return np.asarray(actions)[:, 0]


def run_sync_group(experiments: Sequence[ExperimentConfig], specs: Sequence[Optional[EnvironmentSpec]],
                   resumes: Sequence[bool], log_every: int = 1_000) -> List[Dict[str, Any]]:
  """K `sync` runs in one process with a shared vmapped update and policy call; each run's summary."""
  from repertory.agents.stacked_learner import StackedLearner
  check_group(experiments)
  keep_freed_memory()
  with signals_at_step_boundaries():
    runs = [SyncRun(e, s, r, log_every) for e, s, r in zip(experiments, specs, resumes)]
    stack = StackedLearner([run.learner for run in runs])
    try:
      for k, run in enumerate(runs):
        run.attach(stack.member(k), update_actor=False)
      group_policy = GroupPolicy([run.actor for run in runs])
      period = max(1, runs[0].builder.config.variable_update_period)
      # what the actors act with, as each run's actor fetched it when it was built (or held at its checkpoint)
      variables = jax.tree.map(lambda *xs: jnp.stack(xs), *[run.actor.client.params for run in runs])
      calls = runs[0].actor.client.calls
      if period > 1 and len({run.actor.client.calls for run in runs}) > 1:
        raise ConfigError("runs resumed in one process must have stopped at the same step (their actors fetch "
                          "parameters together); resume them one per process")
      for k, run in enumerate(runs):  # what a checkpoint of the run holds as its actor's
        run.actor.client.hold(lambda k=k: (jax.tree.map(lambda x: x[k], variables), calls))
      raise_if_terminated()
      while not all(run.done for run in runs):
        acting = [run for run in runs if not run.done]
        observations = []
        for run in runs:
          with run.clock.phase("environment"):  # a reset, when an episode starts
            observations.append(None if run.done else run.loop.begin_step())
        clocks = [run.clock for run in acting]  # a call the runs share counts in full for each of them
        with timed(clocks, "policy"):
          actions = group_policy.select(variables, observations)
        for k, run in enumerate(runs):
          if not run.done:
            with run.clock.phase("environment"):
              episode = run.loop.end_step(actions[k])
            run.acted([] if episode is None else [episode])
        calls += 1
        with timed(clocks, "learning"):
          if calls % period == 0:  # where a run alone refreshes its actor: after acting, before learning
            variables = stack.get_variables()
          while any(run.wants_update for run in acting):
            for run, metrics in zip(runs, stack.step([run in acting and run.wants_update for run in runs])):
              if metrics is not None:
                run.learned(metrics)
        for run in acting:
          run.finish_step()
        raise_if_terminated()
    except KeyboardInterrupt as interrupt:
      for run in runs:
        run.interrupted(getattr(interrupt, "at_step_boundary", False))
      raise
    return [run.finish() for run in runs]
