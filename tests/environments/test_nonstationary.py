"""`?permute_every=N`: a real CartPole whose observation entries are permuted anew every N steps."""

import numpy as np
import pytest

from repertory import environments
from repertory.environments.nonstationary import task_permutation
from repertory.errors import ConfigError


def test_observations_are_the_plain_tasks_entries_permuted_per_task_and_change_only_between_episodes():
  plain = environments.make("gym:CartPole-v1", seed=3)
  permuted = environments.make("gym:CartPole-v1?permute_every=25&permute_seed=7", seed=3)
  timesteps, tasks, firsts = [], [], []
  a, b = plain.reset(), permuted.reset()
  for _ in range(120):
    np.testing.assert_array_equal(b.observation, a.observation[task_permutation(7, permuted.task, 4)])
    tasks.append(permuted.task)
    firsts.append(b.first())
    a, b = plain.step(np.int64(0)), permuted.step(np.int64(0))
  assert tasks[0] == 0 and max(tasks) >= 3  # ~10-step episodes: a new task every ~25 steps
  for i in range(1, len(tasks)):
    if tasks[i] != tasks[i - 1]:
      assert firsts[i]  # the task changes only when an episode begins
  assert tasks == sorted(tasks)
  assert not np.array_equal(task_permutation(7, 1, 4), np.arange(4)) or not np.array_equal(
      task_permutation(7, 2, 4), np.arange(4))
  np.testing.assert_array_equal(task_permutation(7, 2, 4), task_permutation(7, 2, 4))  # from (seed, task) alone
  assert sorted(task_permutation(7, 5, 4)) == [0, 1, 2, 3]


@pytest.mark.parametrize("name, message", [("gym:CartPole-v1?permute_every=0", "permute_every"),
                                           ("gym:CartPole-v1?permute_every=2.5", "whole number"),
                                           ("minigrid:MiniGrid-Empty-5x5-v0?permute_every=10", "vector")])
def test_bad_permutation_settings_are_one_line_errors(name, message):
  with pytest.raises(ConfigError, match=message) as error:
    environments.make(name)
  assert "\n" not in str(error.value)
