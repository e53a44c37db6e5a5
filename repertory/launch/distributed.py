"""Builds a distributed program from an experiment and supervises it to the step budget."""

import time
from typing import Any, Dict, Optional

from repertory.environments.specs import EnvironmentSpec
from repertory.launch import nodes
from repertory.launch.experiment import ExperimentConfig
from repertory.launch.launchers import NodeFailure, RayLaunch, ThreadLaunch
from repertory.launch.lifetime import raise_if_terminated
from repertory.launch.program import Handle, Node, Program
from repertory.utils.progress import ProgressLine

COUNTER_SAVE_S = 30.0


def make_program(experiment: ExperimentConfig, spec: EnvironmentSpec, resume: bool = False) -> Program:
  """The run's nodes; each receives `spec`, computed once by the driver (`experiment.environment_spec()`)."""
  experiment = experiment.with_resolved_replay()
  program = Program(f"{experiment.agent}_{experiment.env}")
  counter = program.add_node(Node(nodes.CounterService, (experiment.run_dir, experiment.max_actor_steps, resume),
                                  num_cpus=0), "counter")
  replay = program.add_node(Node(nodes.ReplayService, (experiment, spec), num_cpus=0), "replay")
  learner = program.add_node(Node(nodes.LearnerService, (experiment, spec, replay, counter), {"resume": resume},
                                  wants_accelerator=True), "learner")
  for actor_id in range(experiment.num_actors):
    program.add_node(Node(nodes.ActorService, (experiment, spec, replay, learner, counter, actor_id),
                          restartable=True), "actor")
  program.add_node(Node(nodes.EvaluatorService, (experiment, spec, learner, counter), num_cpus=0), "evaluator")
  return program


def cpus_needed(experiment: ExperimentConfig) -> int:
  """CPUs a `ray` run reserves: one per actor and one for the learner (the other nodes ask for none)."""
  return experiment.num_actors + 1


def launch(program: Program, experiment: ExperimentConfig):
  if experiment.launcher == "thread":
    return ThreadLaunch(program, timeout_s=experiment.node_timeout_s)
  num_cpus = None
  if experiment.ray_address is None:
    import os
    num_cpus = max(os.cpu_count() or 1, cpus_needed(experiment))
  return RayLaunch(program, address=experiment.ray_address, timeout_s=experiment.node_timeout_s, num_cpus=num_cpus)


def _save_on_interrupt(launched) -> None:
  """Checkpoints the learner and saves the step count, as far as the nodes still answer."""
  for label, save in (("learner", lambda node: node.save()), ("counter", lambda node: node.save())):
    try:
      save(launched.resolve(Handle(label, 0)))
    except Exception:  # noqa: BLE001 — a node already gone; the run resumes from its last checkpoint
      pass


def run_distributed(experiment: ExperimentConfig, spec: Optional[EnvironmentSpec] = None,
                    resume: bool = False) -> Dict[str, Any]:
  """Runs until the counter reaches `max_actor_steps`; restarts dead actors; fails fast otherwise.

  `spec`: the run's environment spec if the caller has it; else computed here, once."""
  program = make_program(experiment, spec if spec is not None else experiment.environment_spec(), resume)
  launched = launch(program, experiment)
  try:
    counter = launched.resolve(Handle("counter", 0))
    evaluator = launched.resolve(Handle("evaluator", 0))
    learner = launched.resolve(Handle("learner", 0))
    progress = ProgressLine(experiment.max_actor_steps, enabled=experiment.progress, label=experiment.launcher)
    restarts, saved_at = 0, time.monotonic()
    counter.record("driver", {"event": "all nodes started", "restarts": 0})
    while True:
      for handle, error in launched.poll():
        name = Program.node_name(handle)
        if program.node(handle).restartable:
          if restarts >= experiment.max_actor_restarts:
            raise NodeFailure(f"node '{name}' died {restarts + 1} times, more than --max-actor-restarts "
                              f"{experiment.max_actor_restarts} allows; last error: {error.splitlines()[0]}")
          restarts += 1
          counter.record("driver", {"event": f"restarted {name}", "restarts": restarts})
          launched.restart(handle)
        else:
          raise NodeFailure(f"node '{name}' died: {error.splitlines()[0]}")
      counts = counter.get()
      progress.update(counts)
      if counts["actor_steps"] >= experiment.max_actor_steps:
        break
      if time.monotonic() - saved_at > COUNTER_SAVE_S:  # a resume after a dead driver continues from here
        counter.save()
        saved_at = time.monotonic()
      time.sleep(0.5)
      raise_if_terminated()
    final_evaluation = evaluator.evaluate()
    learner_steps = learner.save()
    if experiment.checkpoint_replay:
      launched.resolve(Handle("replay", 0)).checkpoint()
    counts = counter.get()
    counts.update(final_evaluation_return=final_evaluation, learner_steps=learner_steps, actor_restarts=restarts)
    progress.update(counts, final=True)
    return counts
  except KeyboardInterrupt:  # SIGINT / SIGTERM (training.train_run): keep the learner's state and the count
    _save_on_interrupt(launched)
    raise
  finally:
    launched.stop()
    launched.shutdown()
