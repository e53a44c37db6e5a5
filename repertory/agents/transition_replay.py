"""The replay of the n-step transition agents (DQN, DER): a prioritised table and its example item."""

from typing import Any

import numpy as np

from repertory.environments.specs import EnvironmentSpec
from repertory.replay.adders import Transition
from repertory.replay.config import TableConfig, validate_table_config


def prioritized_table(config: Any) -> TableConfig:
  """A proportional prioritised table (Schaul et al. 2016, arXiv 1511.05952) from an agent config's
  `max_replay_size`, `min_replay_size`, `samples_per_insert(_tolerance)` and `priority_exponent`; stacked
  frames are stored once (`deduplicate_frames`)."""
  return validate_table_config(TableConfig(
      name="priority_table", sampler="prioritized", max_size=config.max_replay_size,
      min_size_to_sample=config.min_replay_size, samples_per_insert=config.samples_per_insert,
      samples_per_insert_tolerance=config.samples_per_insert_tolerance,
      priority_exponent=config.priority_exponent, deduplicate_frames=True), config.batch_size)


def example_transition(spec: EnvironmentSpec) -> Transition:
  """One transition of the environment's shapes and dtypes (the Reverb table signature)."""
  observation = spec.observations.generate_value()
  return Transition(observation, np.asarray(spec.actions.generate_value()), np.float32(0), np.float32(0), observation)
