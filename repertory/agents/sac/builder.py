"""Turns an environment spec into SAC's replay table, adder, learner, actors and evaluator policy."""

from typing import Any, Callable, Iterator, Optional

import numpy as np

from repertory.agents.actor_base import VariableClient
from repertory.agents.data_parallel import DataParallel
from repertory.agents.sac import acting, learning, networks as sac_networks
from repertory.agents.sac.config import SACConfig
from repertory.environments.specs import EnvironmentSpec
from repertory.errors import ConfigError
from repertory.replay.adders import NStepTransitionAdder, Transition
from repertory.replay.config import TableConfig, validate_table_config
from repertory.replay.types import ReplayBatch


class SACBuilder:
  name = "sac"

  def __init__(self, config: SACConfig = SACConfig()):
    self.config = config

  def check_environment(self, spec: EnvironmentSpec) -> None:
    actions = spec.actions
    if hasattr(actions, "num_values") or not np.issubdtype(np.dtype(actions.dtype), np.floating):
      raise ConfigError("sac needs continuous actions; use dqn or der for discrete ones")
    if not (hasattr(actions, "minimum") and hasattr(actions, "maximum")) or not (
        np.all(np.isfinite(actions.minimum)) and np.all(np.isfinite(actions.maximum))):
      raise ConfigError("sac needs bounded continuous actions (a BoundedArray with finite bounds) to squash into")
    shape = spec.observations.shape if hasattr(spec.observations, "shape") else None
    if shape is None or len(shape) not in (1, 3):
      raise ConfigError(f"sac needs flat vector or [H, W, C] image observations, got {spec.observations}")

  def table_config(self) -> TableConfig:
    c = self.config
    return validate_table_config(TableConfig(
        name="sac_replay", sampler="uniform", max_size=c.max_replay_size, min_size_to_sample=c.min_replay_size,
        samples_per_insert=c.samples_per_insert, samples_per_insert_tolerance=c.samples_per_insert_tolerance),
        c.batch_size)

  def example_item(self, spec: EnvironmentSpec) -> Transition:
    observation = spec.observations.generate_value()
    action = np.zeros(spec.actions.shape, np.float32)
    return Transition(observation, action, np.float32(0), np.float32(0), observation)

  def make_networks(self, spec: EnvironmentSpec) -> sac_networks.SACNetworks:
    self.check_environment(spec)
    return sac_networks.make_networks(spec, self.config)

  def make_learner(self, networks, spec: EnvironmentSpec, iterator: Iterator[ReplayBatch],
                   update_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]], seed: int,
                   data_parallel: Optional[DataParallel] = None):
    del update_priorities  # uniform replay
    return learning.SACLearner(networks, self.config, iterator, seed, spec.observations.generate_value(),
                               data_parallel)

  def make_policy(self, networks):
    return acting.make_policy(networks)

  def make_adder(self, writer: Any) -> NStepTransitionAdder:
    return NStepTransitionAdder(writer, self.config.n_step, self.config.discount)

  def make_actor(self, policy, variable_source: Any, seed: int, adder: Optional[Any] = None,
                 evaluation: bool = False):
    c = self.config
    client = VariableClient(variable_source, 1 if evaluation else c.variable_update_period,
                            sparsity=c.eval_sparsity if evaluation else 0.0)
    return acting.SACActor(policy, client, seed, adder, evaluation=evaluation, random_steps=c.min_replay_size)
