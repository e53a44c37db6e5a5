"""Turns an environment spec into DQN's replay table, adder, learner, actors and evaluator policy."""

from typing import Any, Callable, Iterator, Optional

import numpy as np

from repertory.agents import transition_replay
from repertory.agents.actor_base import VariableClient
from repertory.agents.data_parallel import DataParallel
from repertory.agents.dqn import acting, learning, networks as dqn_networks
from repertory.agents.dqn.config import DQNConfig
from repertory.environments.specs import EnvironmentSpec
from repertory.errors import ConfigError
from repertory.replay.adders import NStepTransitionAdder, Transition
from repertory.replay.config import TableConfig
from repertory.replay.types import ReplayBatch


class DQNBuilder:
  name = "dqn"
  frames_first_batches = True  # its `SGDLearner` takes a table's stacked frames frames-first (`frames_last`)

  def __init__(self, config: DQNConfig = DQNConfig()):
    self.config = config

  def check_environment(self, spec: EnvironmentSpec) -> None:
    if not hasattr(spec.actions, "num_values"):
      raise ConfigError("the dqn agent needs discrete actions; use a continuous-control agent (sac) for this environment")

  def table_config(self) -> TableConfig:
    return transition_replay.prioritized_table(self.config)

  def example_item(self, spec: EnvironmentSpec) -> Transition:
    return transition_replay.example_transition(spec)

  def make_networks(self, spec: EnvironmentSpec) -> dqn_networks.DQNNetworks:
    self.check_environment(spec)
    return dqn_networks.make_networks(spec, self.config)

  def make_learner(self, networks, spec: EnvironmentSpec, iterator: Iterator[ReplayBatch],
                   update_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]], seed: int,
                   data_parallel: Optional[DataParallel] = None):
    return learning.make_learner(networks, self.config, iterator, update_priorities, seed,
                               spec.observations.generate_value(), data_parallel=data_parallel)

  def make_policy(self, networks):
    return acting.make_epsilon_greedy_policy(networks)

  def make_adder(self, writer: Any) -> NStepTransitionAdder:
    return NStepTransitionAdder(writer, self.config.n_step, self.config.discount)

  def make_actor(self, policy, variable_source: Any, seed: int, adder: Optional[Any] = None,
                 evaluation: bool = False):
    c = self.config
    if evaluation:
      epsilon = lambda step: c.evaluation_epsilon
    else:
      epsilon = acting.linear_epsilon(c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps)
    client = VariableClient(variable_source, 1 if evaluation else c.variable_update_period,
                            sparsity=c.eval_sparsity if evaluation else 0.0)
    return acting.DQNActor(policy, client, epsilon, seed, adder)
