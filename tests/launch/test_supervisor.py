"""The supervisor restarts any node that dies, with its restart arguments, through the handles others hold;
past the bound the run stops with one line naming the node. Thread launcher, real counter service."""

import time

import pytest

from repertory.launch.launchers import NodeFailure, ThreadLaunch
from repertory.launch.counter_node import CounterService
from repertory.launch.program import Handle, Node, Program
from repertory.launch.service import Service
from repertory.launch.supervisor import Supervisor
from repertory.utils.loggers import read_metrics


class Crashing(Service):
  """Its `run()` raises while fewer than `crashes` instances were made before it."""

  made = 0

  def __init__(self, counter, crashes: int, restarted: bool = False):
    super().__init__()
    self.restarted, self.number, self._crashes = restarted, Crashing.made, crashes
    Crashing.made += 1

  def run(self):
    if self.number < self._crashes:
      raise RuntimeError(f"crash {self.number}")
    return super().run()

  def recovery(self):
    return f"incarnation {self.number}"


class Caller(Service):
  def __init__(self, target):
    super().__init__()
    self._target = target

  def target_number(self):
    return self._target.number


def _program(run_dir, crashes):
  Crashing.made = 0
  program = Program("p")
  counter = program.add_node(Node(CounterService, (run_dir, 100)), "counter")
  crashing = program.add_node(Node(Crashing, (counter, crashes), restart_kwargs={"restarted": True}), "crashing")
  program.add_node(Node(Caller, (crashing,)), "caller")
  return program


def _supervise(program, max_restarts, until, timeout_s=20):
  launched = ThreadLaunch(program, timeout_s=5)
  supervisor = Supervisor(program, launched, max_restarts, lambda: {"actor_steps": 0}, poll_s=0.05).start()
  try:
    deadline = time.monotonic() + timeout_s
    while not until(launched, supervisor) and supervisor.failure is None and time.monotonic() < deadline:
      time.sleep(0.05)
    return launched, supervisor
  finally:
    supervisor.stop()
    launched.stop()


def test_a_dead_node_is_restarted_with_its_restart_arguments_and_reached_through_old_handles(tmp_path):
  program = _program(str(tmp_path), crashes=2)
  launched, supervisor = _supervise(program, 3, lambda launched, s: s.restarts.get("crashing") == 2)
  supervisor.check()
  assert supervisor.restarts == {"crashing": 2}
  service = launched.services[Handle("crashing", 0)]
  assert service.number == 2 and service.restarted  # the third instance, built with restart_kwargs
  assert launched.resolve(Handle("caller", 0)).target_number() == 2  # the caller's handle reaches the new one
  rows = read_metrics(str(tmp_path / "metrics.csv"), "driver")
  assert [r["event"] for r in rows] == ["restarted crashing"] * 2
  assert [r["recovered"] for r in rows] == ["incarnation 1", "incarnation 2"]
  assert [r["cause"] for r in rows] == ["RuntimeError: crash 0", "RuntimeError: crash 1"]
  assert [int(r["restarts"]) for r in rows] == [1, 2]
  assert all(float(r["restart_s"]) >= 0 for r in rows)


def test_past_its_restart_bound_a_node_stops_the_run_with_one_line_naming_it(tmp_path):
  program = _program(str(tmp_path), crashes=10)
  _, supervisor = _supervise(program, 2, lambda launched, s: False)
  with pytest.raises(NodeFailure) as failure:
    supervisor.check()
  assert str(failure.value) == ("node 'crashing' died 3 times, more than --max-restarts 2 allows (restarted 2 times); "
                                "last error: RuntimeError: crash 2")
  assert supervisor.restarts == {"crashing": 2}


def test_the_counter_restarts_from_counter_json_and_says_what_it_lost(tmp_path):
  counter = CounterService(str(tmp_path), 1000, save_every_s=0.0)
  counter.increment(actor_steps=300, episodes=2)  # saved: the save period is 0
  counter.stop()
  restarted = CounterService(str(tmp_path), 1000, resume=True)
  assert restarted.get()["actor_steps"] == 300 and restarted.get()["episodes"] == 2
  assert restarted.recovery() == "counter.json at 300 actor steps"
  assert restarted.reserve_actor_steps(0, 1000) == 700  # the budget continues from the saved count
  restarted.stop()
