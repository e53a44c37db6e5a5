"""Learners of every agent stepped on random batches shaped like their replay items (the learner tests' helper)."""

import jax
import numpy as np

from repertory import environments
from repertory.agents import make_builder
from repertory.environments.specs import make_environment_spec
from repertory.replay.types import ReplayBatch

AGENTS = {  # agent → (environment, overrides): small batches that 4 devices divide
    "dqn": ("gym:CartPole-v1", {"batch_size": "16", "sgd_steps_per_call": "2"}),
    "der": ("atari:Pong", {"batch_size": "8"}),
    "impala": ("gym:CartPole-v1", {"batch_size": "8", "unroll_length": "5"}),
    "sac": ("gym:Pendulum-v1", {"batch_size": "16"}),
}


class FixedParams:
  """A variable source that always gives the same parameters (for actors under test)."""

  def __init__(self, params):
    self._params = params

  def get_variables(self):
    return self._params


def random_batch(example, batch_size, num_actions, seed):
  """`batch_size` copies of a replay item with random observations, rewards, logits and actions."""
  rng = np.random.default_rng(seed)

  def fill(path, x):
    x = np.asarray(x)
    shape = (batch_size,) + x.shape
    name = jax.tree_util.keystr(path)
    if x.dtype == np.uint8:
      return rng.integers(0, 256, shape, dtype=np.uint8)
    if "action" in name and np.issubdtype(x.dtype, np.integer):
      return rng.integers(0, num_actions, shape).astype(x.dtype)
    if np.issubdtype(x.dtype, np.floating) and not any(k in name for k in ("discount", "mask")):
      return rng.uniform(-1, 1, shape).astype(x.dtype)
    return np.broadcast_to(x, shape).copy()
  data = jax.tree_util.tree_map_with_path(fill, example)
  return ReplayBatch(np.arange(1, batch_size + 1, dtype=np.uint64), np.full(batch_size, 1.0 / batch_size),
                     np.full(batch_size, batch_size), data)


def run_updates(agent, data_parallel=None, steps=2, extra_overrides=None, snapshots=None):
  """`steps` learner steps of `agent` on random batches: (learner, state, last metrics, priorities written);
  `snapshots`, a list, gets the state after every step."""
  env_name, overrides = AGENTS[agent]
  overrides = {**overrides, **(extra_overrides or {})}
  environment = environments.make(env_name, seed=0)
  spec = make_environment_spec(environment)
  environment.close()
  builder = make_builder(agent, overrides)
  num_actions = getattr(spec.actions, "num_values", 1)
  batches = [random_batch(builder.example_item(spec), builder.config.batch_size, num_actions, seed)
             for seed in range(steps * getattr(builder.config, "sgd_steps_per_call", 1))]
  priorities = []
  learner = builder.make_learner(builder.make_networks(spec), spec, iter(batches),
                                 lambda keys, p: priorities.append(np.asarray(p)), seed=0, data_parallel=data_parallel)
  metrics = {}
  for _ in range(steps):
    metrics = learner.step()
    if snapshots is not None:
      snapshots.append(jax.device_get(learner.state()))
  return learner, jax.device_get(learner.state()), jax.device_get(metrics), priorities
