"""Builds a distributed program from an experiment and supervises it to the step budget."""

import time
from typing import Any, Dict, List, Optional, Tuple

from repertory.environments.specs import EnvironmentSpec
from repertory.launch import nodes
from repertory.launch.experiment import ExperimentConfig
from repertory.launch.launchers import NodeFailure, ThreadLaunch
from repertory.launch.lifetime import raise_if_terminated
from repertory.launch.program import Handle, Node, Program
from repertory.launch.ray_launch import RayLaunch
from repertory.launch.supervisor import Supervisor
from repertory.utils.progress import ProgressLine


def make_program(experiment: ExperimentConfig, spec: EnvironmentSpec, resume: bool = False) -> Program:
  """The run's nodes; each receives `spec`, computed once by the driver (`experiment.environment_spec()`).

  Every node can be restarted: the counter from counter.json, the learner from its last checkpoint, the
  replay from its last table checkpoint (with `checkpoint_replay`; empty otherwise), actors and the
  evaluator afresh. A resumed run starts its counter from the counts saved with the learner checkpoint it
  restores (`CheckpointRounds`), the metrics rows written after that checkpoint dropped."""
  experiment = experiment.with_resolved_replay()
  program = Program(f"{experiment.agent}_{experiment.env}")
  step = resume_step(experiment, resume)
  counter = program.add_node(Node(nodes.CounterService, (experiment.run_dir, experiment.max_actor_steps),
                                  {"resume": resume, "checkpoint_step": step},
                                  num_cpus=0, restart_kwargs={"resume": True, "checkpoint_step": None}), "counter")
  replay = program.add_node(Node(nodes.ReplayService, (experiment, spec), num_cpus=0, on_cpu_host=True), "replay")
  gang = "learner" if experiment.learner_hosts > 1 else ""  # several processes: one JAX program, one per host
  learner = [program.add_node(Node(nodes.LearnerService, (experiment, spec, replay, counter),
                                   {"resume": resume, "restore_step": step, "process_id": i,
                                    "num_processes": experiment.learner_hosts},
                                   wants_accelerator=True, restart_kwargs={"resume": True, "restore_step": None},
                                   gang=gang), "learner")
             for i in range(experiment.learner_hosts)][0]  # process 0: the one actors and the evaluator talk to
  for actor_id in range(experiment.num_actors):
    program.add_node(Node(nodes.ActorService, (experiment, spec, replay, learner, counter, actor_id),
                          on_cpu_host=True), "actor")
  program.add_node(Node(nodes.EvaluatorService, (experiment, spec, learner, counter), num_cpus=0), "evaluator")
  return program


def resume_step(experiment: ExperimentConfig, resume: bool) -> Optional[int]:
  """The learner step a resumed run goes on from: that of the latest checkpoint round that completed, i.e. saved
  its counts after the learner's checkpoint and, with `checkpoint_replay`, its replay table after them (a driver
  that died part-way left a round without them; the round before is still kept). Else the latest learner
  checkpoint (a run dir from before rounds saved counts: the counter then takes counter.json)."""
  import os
  from repertory.launch.counter_node import steps_with_counts
  from repertory.replay.backends import checkpoint_tags
  from repertory.utils.checkpointing import saved_steps
  learner_steps = saved_steps(os.path.join(experiment.run_dir, "checkpoints")) if resume else []
  with_counts = set(steps_with_counts(experiment.run_dir))
  complete = [step for step in learner_steps if step in with_counts]
  if experiment.checkpoint_replay:
    with_replay = checkpoint_tags(os.path.join(experiment.run_dir, "replay_checkpoint")).get("learner_step")
    if with_replay in complete:
      return with_replay
  return (complete or learner_steps or [None])[-1]


def placement(program: Program, launched: Any) -> Dict[str, Dict[str, str]]:
  """{node name: {"host": its host's address, "node_id": its Ray node}} as the nodes started."""
  where = {}
  for handle in program.handles():
    service = launched.resolve(handle)
    where[Program.node_name(handle)] = {"host": service.host(), "node_id": service.node_id()}
  return where


def placement_line(where: Dict[str, Dict[str, str]]) -> str:
  """'placement: <host> [<node id>]: learner; <host> [<node id>]: replay, actor_0, ...' (one group per Ray node)."""
  groups: Dict[Tuple[str, str], List[str]] = {}
  for name, node in where.items():
    groups.setdefault((node["host"], node["node_id"][:8]), []).append(name)
  return "placement: " + "; ".join(f"{host} [{node}]: {', '.join(names)}" for (host, node), names in groups.items())


def cpus_needed(experiment: ExperimentConfig) -> int:
  """CPUs a `ray` run reserves: one per actor and one per learner process (the other nodes ask for none)."""
  return experiment.num_actors + experiment.learner_hosts


def launch(program: Program, experiment: ExperimentConfig):
  if experiment.launcher == "thread":
    return ThreadLaunch(program, timeout_s=experiment.node_timeout_s)
  num_cpus = None
  if experiment.ray_address is None:
    import os
    num_cpus = max(os.cpu_count() or 1, cpus_needed(experiment))
  return RayLaunch(program, address=experiment.ray_address, timeout_s=experiment.node_timeout_s, num_cpus=num_cpus)


def _save_on_interrupt(launched: Any, rounds: Optional["CheckpointRounds"]) -> None:
  """A checkpoint round; where a node no longer answers, the learner and the counts with it, as far as they do."""
  if rounds is not None:
    try:
      learner, counter, replay = (launched.resolve(Handle(name, 0)) for name in ("learner", "counter", "replay"))
      rounds.take(learner, counter, replay, counter.get()["actor_steps"])
      return
    except Exception:  # noqa: BLE001 — a node already gone
      pass
  try:
    learner_step = launched.resolve(Handle("learner", 0)).save()
  except Exception:  # noqa: BLE001 — a node already gone; the run resumes from its last checkpoint
    learner_step = None
  try:
    launched.resolve(Handle("counter", 0)).save(learner_step)
  except Exception:  # noqa: BLE001
    pass


HOLD_ACTORS_WAIT_S = 30.0  # longest a checkpoint round waits for the actors' granted steps (a dead actor's never come)


class CheckpointRounds:
  """The checkpoints of a thread/ray run, taken by the driver: every `checkpoint_every` actor steps and every
  `checkpoint_every_s` seconds, whichever comes first, once a restarted node is back, on a signal and at the
  end. A round is one instant of the run: the actors are held once every step granted to them is counted and
  written to the replay, the learner is held between two updates with its priority updates written, and then
  the learner, the counts and metrics row count that go with it (`CounterService.save`) and, with
  `checkpoint_replay`, the replay table are saved before both go on. Each round is a `checkpoint` row of
  metrics.csv, saying whether the actors were held (an actor that died holding steps is not waited for past
  HOLD_ACTORS_WAIT_S) and how long holding them and the learner took."""

  def __init__(self, experiment: ExperimentConfig, actor_steps: float):
    self._every, self._every_s = experiment.checkpoint_every, experiment.checkpoint_every_s
    self._with_replay = experiment.checkpoint_replay
    self._hold_s = experiment.node_timeout_s  # the holds lapse by themselves should the driver die in a round
    self._steps, self._at = int(actor_steps), time.monotonic()
    self._restarts = 0

  def due(self, actor_steps: float, restarts: int = 0) -> bool:
    """Whether a round is due at `actor_steps`, with `restarts` node restarts so far (one more: a round)."""
    restarted, self._restarts = restarts > self._restarts, restarts
    return (restarted or int(actor_steps) // self._every > self._steps // self._every
            or time.monotonic() - self._at >= self._every_s)

  def take(self, learner: Any, counter: Any, replay: Any, actor_steps: float) -> int:
    started = time.monotonic()
    counter.hold_actors(self._hold_s)
    try:
      held = counter.actors_held()
      while not held and time.monotonic() - started < min(HOLD_ACTORS_WAIT_S, self._hold_s):
        time.sleep(0.01)
        held = counter.actors_held()
      learner_step = learner.save(hold_s=self._hold_s)
      counter.record("checkpoint", {"checkpoint_learner_step": learner_step,  # kept by a resume from it
                                    "checkpoint_actors_held": int(held),
                                    "checkpoint_hold_s": round(time.monotonic() - started, 3)})
      counter.save(learner_step)
      if self._with_replay:
        replay.checkpoint(learner_step)  # what a restarted replay node and --resume start from
    finally:
      for release in (counter.release_actors, learner.release):
        try:
          release()
        except Exception:  # noqa: BLE001 — a node that died in the round: its restart starts unheld
          pass
    self._steps, self._at = int(actor_steps), time.monotonic()
    return learner_step


def run_distributed(experiment: ExperimentConfig, spec: Optional[EnvironmentSpec] = None,
                    resume: bool = False) -> Dict[str, Any]:
  """Runs until the counter reaches `max_actor_steps`, restarting any node that dies (`Supervisor`).

  `spec`: the run's environment spec if the caller has it; else computed here, once."""
  program = make_program(experiment, spec if spec is not None else experiment.environment_spec(), resume)
  launched = launch(program, experiment)
  supervisor = rounds = None
  try:
    counter = launched.resolve(Handle("counter", 0))
    evaluator = launched.resolve(Handle("evaluator", 0))
    learner = launched.resolve(Handle("learner", 0))
    replay = launched.resolve(Handle("replay", 0))
    progress = ProgressLine(experiment.max_actor_steps, enabled=experiment.progress, label=experiment.launcher)
    counts = counter.get()
    supervisor = Supervisor(program, launched, experiment.max_restarts, lambda: counts).start()
    counter.record("driver", {"event": "all nodes started", "restarts": 0})
    where = placement(program, launched) if experiment.launcher == "ray" else {}
    if where:
      print(placement_line(where), flush=True)
    rounds = CheckpointRounds(experiment, counts["actor_steps"])
    while True:
      supervisor.check()
      counts = counter.get()
      progress.update(counts)
      if counts["actor_steps"] >= experiment.max_actor_steps:
        break
      if rounds.due(counts["actor_steps"], sum(supervisor.restarts.values())):
        rounds.take(learner, counter, replay, counts["actor_steps"])
      time.sleep(0.5)
      raise_if_terminated()
    final_evaluation = evaluator.evaluate()
    learner_steps = rounds.take(learner, counter, replay, counts["actor_steps"])
    supervisor.stop()
    supervisor.check()
    counts = counter.get()
    counts.update(final_evaluation_return=final_evaluation, learner_steps=learner_steps,
                  actor_restarts=supervisor.actor_restarts(), restarts=dict(supervisor.restarts))
    if where:
      counts["placement"] = where
    progress.update(counts, final=True)
    return counts
  except NodeFailure:
    if supervisor is not None:
      supervisor.check()  # its line names the node past its restart bound
    raise
  except KeyboardInterrupt:  # SIGINT / SIGTERM (training.train_run): a last checkpoint round
    if supervisor is not None:
      supervisor.stop()
    _save_on_interrupt(launched, rounds)
    raise
  finally:
    if supervisor is not None:
      supervisor.stop()
    launched.stop()
    launched.shutdown()
