"""Phase clocks: seconds per named phase, handed over once, shared calls counted for every clock."""

import time

from repertory.utils.timing import NoClock, PhaseClock, timed


def test_a_clock_adds_up_each_phase_and_hands_them_over_once():
  clock = PhaseClock()
  for _ in range(2):
    with clock.phase("policy"):
      time.sleep(0.01)
  with clock.phase("learning"):
    pass
  taken = clock.take()
  assert set(taken) == {"policy_s", "learning_s"}
  assert 0.02 <= taken["policy_s"] < 1 and 0 <= taken["learning_s"] < taken["policy_s"]
  assert clock.take() == {}  # handed over: the next take starts from zero


def test_a_shared_call_counts_in_full_for_every_clock_even_when_it_raises():
  clocks = [PhaseClock(), PhaseClock()]
  try:
    with timed(clocks, "learning"):
      time.sleep(0.01)
      raise ValueError
  except ValueError:
    pass
  first, second = (clock.take() for clock in clocks)
  assert first == second and first["learning_s"] >= 0.01
  with NoClock().phase("policy"):
    pass
  assert NoClock().take() == {}
