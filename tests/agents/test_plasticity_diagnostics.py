"""Plasticity diagnostics inside every learner: rows at the period, named per layer, and training unchanged."""

import jax
import numpy as np
import pytest

from learner_helpers import AGENTS, run_updates

from repertory.agents import make_config
from repertory.errors import ConfigError
from legs import one_leg

PERIOD = {"diagnostics_period": "2", "probe_steps": "2"}


@pytest.mark.parametrize("agent", [pytest.param(a, marks=one_leg(1)) if a == "der" else a for a in sorted(AGENTS)])
def test_a_learner_with_diagnostics_on_trains_exactly_as_with_them_off(agent):
  _, plain, plain_metrics, plain_priorities = run_updates(agent, steps=3)
  learner, diagnosed, metrics, priorities = run_updates(agent, steps=3, extra_overrides=PERIOD)
  jax.tree.map(np.testing.assert_array_equal, diagnosed, plain)
  jax.tree.map(np.testing.assert_array_equal, metrics, plain_metrics)
  for a, b in zip(priorities, plain_priorities):
    np.testing.assert_array_equal(a, b)
  row = learner.take_diagnostics()
  steps_per_call = int(AGENTS[agent][1].get("sgd_steps_per_call", 1))
  assert row["learner_steps"] == (3 * steps_per_call // 2) * 2  # the last period crossed
  assert learner.take_diagnostics() is None  # taken once
  dormant = [k for k in row if k.startswith("dormant/")]
  assert dormant and all(0.0 <= row[k] <= 1.0 for k in dormant)
  assert row["srank"] >= 1
  assert any(k.startswith("weight_norm/") for k in row) and any(k.startswith("update_norm/") for k in row)
  assert all(np.isfinite(v) for v in row.values()), row
  assert 0.0 < row["probe_loss"] < 2.0  # targets are the outputs + N(0, 1): the probe starts near 1


def test_a_learner_without_diagnostics_has_none_to_give():
  learner, *_ = run_updates("dqn", steps=1)
  assert learner.take_diagnostics() is None


@pytest.mark.parametrize("field, value", [("diagnostics_period", "-1"), ("dormant_threshold", "1.5"),
                                          ("probe_steps", "0")])
def test_bad_diagnostics_settings_are_one_line_errors(field, value):
  with pytest.raises(ConfigError, match=field):
    make_config("der", {field: value})
