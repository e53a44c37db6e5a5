"""Turns an environment spec into IMPALA's queue, sequence adder, learner, actors and evaluator policy."""

import os
from typing import Any, Callable, Iterator, Optional

import jax
import numpy as np

from repertory.agents.actor_base import VariableClient
from repertory.agents.data_parallel import DataParallel
from repertory.agents.impala import acting, learning, networks as impala_networks, teacher as distillation_teacher
from repertory.agents.impala.config import IMPALAConfig
from repertory.environments.specs import EnvironmentSpec
from repertory.errors import ConfigError
from repertory.replay.config import TableConfig, validate_table_config
from repertory.replay.sequence_adder import SequenceAdder, example_sequence
from repertory.replay.types import ReplayBatch


class IMPALABuilder:
  name = "impala"

  def __init__(self, config: IMPALAConfig = IMPALAConfig()):
    self.config = config  # the config has checked the core's name
    if config.distillation_kind != "none" and not os.path.exists(os.path.join(config.teacher_run_dir, "config.json")):
      raise ConfigError(f"teacher_run_dir '{config.teacher_run_dir}' has no config.json; "
                        "point it at a finished impala run dir")

  def check_environment(self, spec: EnvironmentSpec) -> None:
    if not hasattr(spec.actions, "num_values"):
      raise ConfigError("the impala agent needs discrete actions; use a continuous-control agent for this environment")
    if self.config.distillation_kind != "none":
      distillation_teacher.check_teacher(self.config.teacher_run_dir, spec)  # reads its config.json; make_learner loads it

  def table_config(self) -> TableConfig:
    c = self.config
    return validate_table_config(TableConfig(
        name="impala_queue", sampler="fifo", max_size=c.queue_size, min_size_to_sample=c.batch_size), c.batch_size)

  def example_item(self, spec: EnvironmentSpec):
    networks = self.make_networks(spec)
    params = networks.init(jax.random.PRNGKey(0))
    state = jax.device_get(networks.initial_state(params, 1))
    state = jax.tree.map(lambda x: np.asarray(x)[0], state)
    return example_sequence(networks.example_observation, np.asarray(spec.actions.generate_value()),
                            networks.num_actions, state, self.config.unroll_length)

  def make_networks(self, spec: EnvironmentSpec) -> impala_networks.IMPALANetworks:
    self.check_environment_actions(spec)
    return impala_networks.make_networks(spec, self.config)

  def check_environment_actions(self, spec: EnvironmentSpec) -> None:
    if not hasattr(spec.actions, "num_values"):
      raise ConfigError("the impala agent needs discrete actions; use a continuous-control agent for this environment")

  def make_learner(self, networks, spec: EnvironmentSpec, iterator: Iterator[ReplayBatch],
                   update_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]], seed: int,
                   data_parallel: Optional[DataParallel] = None):
    del update_priorities  # a queue: no priorities
    teacher = None
    if self.config.distillation_kind != "none":
      teacher = distillation_teacher.load_teacher(self.config.teacher_run_dir, spec)
    return learning.IMPALALearner(networks, self.config, iterator, seed, teacher, data_parallel)

  def make_policy(self, networks) -> acting.IMPALAPolicy:
    return acting.IMPALAPolicy(networks)

  def make_adder(self, writer: Any) -> SequenceAdder:
    c = self.config
    return SequenceAdder(writer, c.unroll_length, c.period, c.end_of_episode)

  def make_actor(self, policy, variable_source: Any, seed: int, adder: Optional[Any] = None,
                 evaluation: bool = False):
    c = self.config
    client = VariableClient(variable_source, 1 if evaluation else (c.variable_update_period or c.unroll_length),
                            sparsity=c.eval_sparsity if evaluation else 0.0)
    return acting.IMPALAActor(policy, client, seed, adder, greedy=evaluation and c.evaluation_greedy)
