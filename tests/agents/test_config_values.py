"""`--config KEY=VALUE` parsing follows the fields' type annotations, with one clear error per bad value."""

from typing import Optional, Tuple

import pytest

from repertory import agents
from repertory.agents import config_values
from repertory.errors import ConfigError


@pytest.mark.parametrize("annotation, text, expected", [
    (bool, "true", True), (bool, "0", False), (bool, "Off", False),
    (int, "32", 32), (int, "1e5", 100_000), (float, "2.5e-4", 2.5e-4), (float, "3", 3.0), (str, "ppr", "ppr"),
    (Optional[float], "none", None), (Optional[float], "12.5", 12.5), (Optional[int], "None", None),
    (Tuple[int, ...], "256,256", (256, 256)), (Tuple[int, ...], "", ()), (Tuple[int, ...], "(64, 32)", (64, 32)),
    (Tuple[float, str], "0.5,x", (0.5, "x")),
])
def test_values_convert_by_annotation(annotation, text, expected):
  value = config_values.convert(annotation, text)
  assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("annotation, text", [
    (bool, "maybe"), (int, "2.5"), (int, "many"), (float, "fast"), (float, "nan"), (Optional[float], "fast"),
    (Tuple[int, ...], "1,two"), (Tuple[float, str], "0.5"),
])
def test_values_of_the_wrong_type_are_refused(annotation, text):
  with pytest.raises(ValueError):
    config_values.convert(annotation, text)


def test_an_optional_field_refuses_a_word_and_names_its_type():
  with pytest.raises(ConfigError, match=r"samples_per_insert_tolerance=fast' is not a Optional\[float\]; write e.g. "
                                        r"samples_per_insert_tolerance=2.5e-4 or none"):
    agents.make_config("sac", {"samples_per_insert_tolerance": "fast"})
  assert agents.make_config("sac", {"samples_per_insert_tolerance": "none"}).samples_per_insert_tolerance is None
  assert agents.make_config("sac", {"samples_per_insert_tolerance": "64"}).samples_per_insert_tolerance == 64.0


def test_tuples_bools_and_ints_reach_the_config():
  config = agents.make_config("dqn", {"hidden_sizes": "64,32", "dueling": "false", "batch_size": "1e2"})
  assert (config.hidden_sizes, config.dueling, config.batch_size) == ((64, 32), False, 100)
  with pytest.raises(ConfigError, match=r"hidden_sizes=64,x' is not a Tuple\[int, \.\.\.\]; write e.g. hidden_sizes=32,32"):
    agents.make_config("dqn", {"hidden_sizes": "64,x"})


@pytest.mark.parametrize("agent", ["dqn", "der", "sac"])
def test_one_replay_ratio_field_with_one_meaning(agent):
  """Every replay agent sets SGD updates per env step; the rate limiter's samples per insert is derived."""
  config = agents.make_config(agent, {"updates_per_actor_step": "0.25", "batch_size": "16"})
  assert config.updates_per_actor_step == 0.25
  assert config.samples_per_insert == pytest.approx(16 * 0.25)
  with pytest.raises(ConfigError, match="'samples_per_insert' is derived from other fields"):
    agents.make_config(agent, {"samples_per_insert": "8"})


def test_sync_runs_learner_steps_not_sgd_updates():
  from repertory.agents.builder import learner_steps_per_actor_step
  fused = agents.make_config("dqn", {"updates_per_actor_step": "0.5", "sgd_steps_per_call": "4"})
  assert learner_steps_per_actor_step(fused) == pytest.approx(0.125)  # 4 SGD updates per learner step
  assert learner_steps_per_actor_step(agents.make_config("der")) == 1.0


@pytest.mark.parametrize("agent, field, text, message", [
    ("dqn", "learning_rate", "-1", "must be > 0"), ("der", "adam_eps", "0", "must be > 0"),
    ("dqn", "discount", "1.5", r"must be in \[0, 1\]"), ("impala", "discount", "-0.1", r"must be in \[0, 1\]"),
    ("dqn", "n_step", "0", "must be >= 1"), ("dqn", "batch_size", "0", "must be >= 1"),
    ("dqn", "min_replay_size", "-5", "must be >= 0"), ("sac", "temperature_learning_rate", "-3e-4", "must be > 0"),
    ("dqn", "epsilon_end", "2", r"must be in \[0, 1\]"), ("dqn", "learning_rate", "inf", "is not a float"),
])
def test_out_of_range_values_are_refused_in_one_line(agent, field, text, message):
  with pytest.raises(ConfigError, match=f"{field}=.*{message}") as info:
    agents.make_config(agent, {field: text})
  assert "\n" not in str(info.value)


@pytest.mark.parametrize("agent", agents.agent_names())
def test_every_default_config_is_in_range(agent):
  config_values.check_ranges(agent, agents.make_config(agent))
