"""Evaluation on several environments at once (`EvaluationEpisodes`): each environment plays its fixed share of
the episodes, exactly as it would alone, with one batched actor call per step for all of them."""

import jax
import numpy as np
import pytest

from learner_helpers import FixedParams
from repertory import agents, environments
from repertory.agents.environment_loop import EnvironmentLoop, EvaluationEpisodes, evaluation_loop
from repertory.environments.specs import make_environment_spec
from repertory.utils import snapshots

CARTPOLE = "gym:CartPole-v1"


class CountingActor:
  """Wraps an actor: counts its batched calls and records which rows start episodes."""

  def __init__(self, actor):
    self._actor, self.calls, self.batch_sizes, self.firsts = actor, 0, set(), []

  def select_actions(self, observations):
    self.calls += 1
    self.batch_sizes.add(len(observations))
    return self._actor.select_actions(observations)

  def observe_first(self, timestep, index=0):
    self.firsts.append(index)
    self._actor.observe_first(timestep, index)

  def observe(self, action, timestep, index=0):
    self._actor.observe(action, timestep, index)

  def update(self):
    self._actor.update()


def _dqn_evaluator(rows):
  builder = agents.make_builder("dqn", {"evaluation_epsilon": "0.0"})  # greedy: actions depend on the observation only
  networks = builder.make_networks(make_environment_spec(environments.make(CARTPOLE)))
  params = networks.q_network.init(jax.random.PRNGKey(1), np.zeros((1, 4), np.float32))
  return lambda: builder.make_actor(builder.make_policy(networks), FixedParams(params), seed=0, adder=[None] * rows,
                                    evaluation=True)


def _impala_evaluator(rows):
  builder = agents.make_builder("impala", {"core": "lstm", "core_size": "16", "hidden_sizes": "16",
                                           "evaluation_greedy": "true"})  # greedy: actions depend on the history
  networks = builder.make_networks(make_environment_spec(environments.make(CARTPOLE)))
  params = networks.init(jax.random.PRNGKey(2))
  return lambda: builder.make_actor(builder.make_policy(networks), FixedParams(params), seed=0, adder=[None] * rows,
                                    evaluation=True)


def _episodes(episodes):
  return [(e.episode_return, e.episode_length) for e in episodes]


@pytest.mark.parametrize("make_evaluator", [_dqn_evaluator, _impala_evaluator], ids=["feed-forward", "recurrent"])
def test_each_environment_plays_its_share_as_it_would_alone(make_evaluator):
  seeds, num_episodes = [3, 4, 5], 7  # shares 3, 2, 2
  actor = CountingActor(make_evaluator(len(seeds))())
  loop = EvaluationEpisodes([environments.make(CARTPOLE, seed=s) for s in seeds], actor)
  episodes = loop.run_episodes(num_episodes)

  alone = []
  for seed, share in zip(seeds, [3, 2, 2]):
    single = make_evaluator(1)()
    alone += EnvironmentLoop(environments.make(CARTPOLE, seed=seed), single, update_actor=False).run_episodes(share)
  assert _episodes(episodes) == _episodes(alone)  # environment by environment, episode by episode
  assert len({length for _, length in _episodes(alone)}) > 1  # the environments' episodes differ in length
  lengths = [sum(e.episode_length for e in alone[:3]), sum(e.episode_length for e in alone[3:5]),
             sum(e.episode_length for e in alone[5:])]
  assert actor.calls == max(lengths)  # one batched call per step for all environments still playing
  assert actor.batch_sizes == {3}  # a fixed batch: an environment done with its share sits out as a blank row
  assert sorted(actor.firsts) == [0, 0, 0, 1, 1, 2, 2]  # row i is environment i, one start per episode


def test_fewer_episodes_than_environments_and_a_time_limit():
  evaluator = _dqn_evaluator(3)
  loop = EvaluationEpisodes([environments.make(CARTPOLE, seed=s) for s in (3, 4, 5)], evaluator())
  assert len(loop.run_episodes(2)) == 2  # the third environment has no share
  assert loop.run_episodes(50, max_seconds=0.0) == []  # the time is up before the first step


def test_one_environment_is_the_sequential_loop():
  evaluator = _dqn_evaluator(1)
  loop = evaluation_loop([environments.make(CARTPOLE, seed=3)], evaluator())
  assert isinstance(loop, EnvironmentLoop)


def test_a_restored_evaluation_continues_its_environments():
  """The snapshot of the loops' records brings fresh environments to where the evaluated ones were."""
  evaluator = _dqn_evaluator(2)
  make = lambda: [environments.make(CARTPOLE, seed=s) for s in (3, 4)]  # noqa: E731
  loop = EvaluationEpisodes(make(), evaluator(), record=True)
  loop.run_episodes(4)
  state = snapshots.capture(loop)
  fresh = EvaluationEpisodes(make(), evaluator(), record=True)
  snapshots.restore(fresh, state)
  fresh.replay_environment()
  second = _episodes(loop.run_episodes(4))
  assert _episodes(fresh.run_episodes(4)) == second
  assert _episodes(EvaluationEpisodes(make(), evaluator()).run_episodes(4)) != second  # not where fresh ones start
