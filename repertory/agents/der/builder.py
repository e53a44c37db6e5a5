"""Turns an environment spec into DER's prioritised table, n-step adder, learner, actors and policy."""

from typing import Any, Callable, Iterator, Optional

import dm_env
import numpy as np

from repertory.agents import transition_replay
from repertory.agents.actor_base import VariableClient
from repertory.agents.data_parallel import DataParallel
from repertory.agents.der import acting, learning, networks as der_networks
from repertory.agents.der.config import DERConfig
from repertory.agents.dqn.acting import DQNActor
from repertory.environments.specs import EnvironmentSpec
from repertory.errors import ConfigError
from repertory.replay.adders import NStepTransitionAdder, Transition
from repertory.replay.config import TableConfig
from repertory.replay.types import ReplayBatch


class RewardClippingAdder:
  """An n-step adder fed rewards clipped to [−c, c] (DQN/Rainbow/DER reward clipping); c = 0 passes them through."""

  SNAPSHOT_FIELDS = ("_adder",)

  def __init__(self, adder: NStepTransitionAdder, clip: float):
    self._adder, self._clip = adder, float(clip)

  def add_first(self, timestep: dm_env.TimeStep) -> None:
    self._adder.add_first(timestep)

  def add(self, action: Any, next_timestep: dm_env.TimeStep) -> None:
    if self._clip > 0 and next_timestep.reward is not None:
      next_timestep = next_timestep._replace(reward=np.clip(next_timestep.reward, -self._clip, self._clip))
    self._adder.add(action, next_timestep)


class DERBuilder:
  name = "der"
  frames_first_batches = True  # its `SGDLearner` takes a table's stacked frames frames-first (`frames_last`)

  def __init__(self, config: DERConfig = DERConfig()):
    self.config = config

  def table_config(self) -> TableConfig:
    return transition_replay.prioritized_table(self.config)

  def example_item(self, spec: EnvironmentSpec) -> Transition:
    return transition_replay.example_transition(spec)

  def check_environment(self, spec: EnvironmentSpec) -> None:
    if not hasattr(spec.actions, "num_values"):
      raise ConfigError("the der agent needs discrete actions; use a continuous-control agent for this environment")
    if len(spec.observations.shape) != 3:
      raise ConfigError("the der agent needs image observations [H, W, C] (e.g. atari:Pong); use dqn for vector observations")

  def make_networks(self, spec: EnvironmentSpec) -> der_networks.DERNetworks:
    self.check_environment(spec)
    return der_networks.make_networks(spec, self.config)

  def make_learner(self, networks, spec: EnvironmentSpec, iterator: Iterator[ReplayBatch],
                   update_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]], seed: int,
                   data_parallel: Optional[DataParallel] = None):
    return learning.make_learner(networks, self.config, iterator, update_priorities, seed,
                               spec.observations.generate_value(), data_parallel=data_parallel)

  def make_policy(self, networks) -> acting.DERPolicy:
    return acting.make_policy(networks)

  def make_adder(self, writer: Any) -> RewardClippingAdder:
    return RewardClippingAdder(NStepTransitionAdder(writer, self.config.n_step, self.config.discount),
                               self.config.reward_clip)

  def make_actor(self, policy: acting.DERPolicy, variable_source: Any, seed: int, adder: Optional[Any] = None,
                 evaluation: bool = False) -> DQNActor:
    c = self.config
    if evaluation:
      epsilon, fn = (lambda step: c.epsilon_eval), policy.evaluate
    elif policy.has_noise:
      epsilon, fn = (lambda step: c.epsilon_train), policy.train
    else:
      schedule = acting.linearly_decaying_epsilon(c.epsilon_decay_steps, c.min_replay_size, c.epsilon_floor_without_noise)
      epsilon, fn = (lambda step: max(c.epsilon_train, schedule(step))), policy.train
    if c.random_steps and not evaluation:
      explore = epsilon
      epsilon = lambda step: 1.0 if step < c.random_steps else explore(step)  # noqa: E731
    client = VariableClient(variable_source, 1 if evaluation else c.variable_update_period,
                            sparsity=c.eval_sparsity if evaluation else 0.0, weight_names=("w", "w_mu"))
    return DQNActor(fn, client, epsilon, seed, adder)
