"""The vectorised actor writes the same transitions as single-environment actors (same seeds, same policy)."""

import numpy as np
import pytest

from learner_helpers import FixedParams
from repertory import environments
from repertory.agents.dqn.builder import DQNBuilder
from repertory.agents.dqn.config import DQNConfig
from repertory.agents.environment_loop import EnvironmentLoop, VectorEnvironmentLoop
from repertory.environments.specs import make_environment_spec
from repertory.environments.vector import BatchedEnvironment, make_vector


class ListWriter:
  def __init__(self):
    self.items = []

  def insert(self, item, priority=None):
    self.items.append(item)


def _transitions(items):
  return [(tuple(np.asarray(i.observation).ravel().round(6)), int(i.action), float(i.reward), float(i.discount),
           tuple(np.asarray(i.next_observation).ravel().round(6))) for i in items]


@pytest.mark.parametrize("name", ["gym:CartPole-v1", "atari:Breakout"])
def test_vector_loop_matches_single_environment_loops(name):
  import jax
  num_envs, batch_steps = 3, 60
  builder = DQNBuilder(DQNConfig(n_step=3, evaluation_epsilon=0.0))
  spec = make_environment_spec(environments.make(name, seed=0))
  networks = builder.make_networks(spec)
  params = networks.q_network.init(jax.random.PRNGKey(0), spec.observations.generate_value()[None])
  policy = builder.make_policy(networks)

  vector_writers = [ListWriter() for _ in range(num_envs)]
  vector_env = make_vector(name, num_envs, seed=10, backend="python")
  assert isinstance(vector_env, BatchedEnvironment)
  actor = builder.make_actor(policy, FixedParams(params), seed=0, adder=[builder.make_adder(w) for w in vector_writers],
                             evaluation=True)  # greedy: the actions depend only on the observations
  VectorEnvironmentLoop(vector_env, actor).run_steps(batch_steps)

  for i in range(num_envs):
    writer = ListWriter()
    single = builder.make_actor(policy, FixedParams(params), seed=0, adder=builder.make_adder(writer), evaluation=True)
    loop = EnvironmentLoop(environments.make(name, seed=10 + i), single)
    loop.run_steps(batch_steps)
    vector = _transitions(vector_writers[i].items)
    assert len(vector) > 10
    assert vector == _transitions(writer.items)[:len(vector)]


def test_ale_vector_backend_steps_a_batch():
  env = make_vector("atari:Pong", 4, seed=0, backend="ale", training=True)
  try:
    first = env.reset()
    assert first.observation.shape == (4, 84, 84, 4) and first.observation.dtype == np.uint8
    assert np.all(first.step_type == 0)
    step = env.step(np.zeros(4, np.int64))
    assert np.all(step.step_type == 1) and step.reward.dtype == np.float32
    assert env.action_spec().num_values == 6
  finally:
    env.close()


def test_bad_vector_requests():
  from repertory.errors import ConfigError
  with pytest.raises(ConfigError, match="atari: environments only"):
    make_vector("gym:CartPole-v1", 2, backend="ale")
  with pytest.raises(ConfigError, match="num_envs must be >= 1"):
    make_vector("gym:CartPole-v1", 0)
