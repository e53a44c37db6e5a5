"""K independent runs of one SGD agent trained by one `vmap`-ed update (many runs, one program).

A data-efficient agent's networks are small, so one run leaves an accelerator mostly idle; K runs with
the same networks and loss (seeds and games may differ, shapes may not) share each update call instead:
their training states are stacked along a leading [K] axis and `jax.vmap(sgd_steps)` steps all of them at
once. Each run keeps its own replay table, β schedule and step count (its own `SGDLearner`, which only
samples, weighs and writes priorities here), so a run trains exactly as it would alone: a run that is not
due an update this call gets a zero batch and keeps its old state.
On CPU the vmapped convolutions give the same bits as K separate calls (tests/launch/test_sync_group.py).
"""

from typing import Any, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from repertory.agents.sgd_learner import SGDLearner
from repertory.errors import ConfigError


def check_stackable(config: Any) -> None:
  """One line for a config whose learner cannot share a vmapped update (its extras run per learner)."""
  extras = [name for name in ("diagnostics_period", "injection_step", "shrink_perturb_period", "redo_period")
            if getattr(config, name, 0)]
  if extras:
    raise ConfigError(f"several runs in one process need a plain learner; {', '.join(extras)} run one learner at a "
                      "time: set them to 0, or use --runs-per-process 1")


def _stack(*xs):
  return jnp.stack([jnp.asarray(x) for x in xs])


class StackedLearner:
  """Owns the stacked training state of K `SGDLearner`s; `member(k)` is run k's learner as its loop sees it."""

  def __init__(self, learners: Sequence[SGDLearner]):
    if not all(isinstance(learner, SGDLearner) for learner in learners):
      raise ConfigError("several runs in one process need agents with the shared SGD learner (dqn, der)")
    if any(learner.data_parallel.num_devices > 1 for learner in learners):
      raise ConfigError("several runs in one process train on one device; show the process one accelerator "
                        "(e.g. CUDA_VISIBLE_DEVICES=0) or use --runs-per-process 1")
    if any(learner._diagnostics or learner._injection or learner._reset_schedule for learner in learners):
      raise ConfigError("several runs in one process need learners without diagnostics, injection or resets")
    self._learners = list(learners)
    self._state = jax.tree.map(_stack, *[learner.state() for learner in learners])
    self._version = 0  # bumped at every change of the state, so members' slices are cut once per change
    self._sgd_steps = jax.jit(jax.vmap(learners[0].sgd_steps_fn))

    def keep_inactive(active, new_state, state):
      keep = lambda new, old: jnp.where(active.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)  # noqa: E731
      return jax.tree.map(keep, new_state, state)

    # Its own jit: fused into the update, the select changes how XLA compiles the optimiser's arithmetic (and
    # so its last bits); apart, the update is the same program whichever runs are due.
    self._keep_inactive = jax.jit(keep_inactive)

  @property
  def size(self) -> int:
    return len(self._learners)

  def member(self, index: int) -> "StackedMember":
    return StackedMember(self, index)

  def get_variables(self) -> Any:
    """Every run's acting variables, stacked [K, ...] (what one vmapped policy call takes)."""
    return self._variables(self._state)

  def _variables(self, state: Any) -> Any:
    if self._learners[0]._variables_with_state:
      return {"params": state.params, "state": state.net_state}
    return state.params

  def step(self, active: Sequence[bool]) -> List[Optional[Dict[str, Any]]]:
    """One `step()` of every run whose `active` entry is set; their metrics (None for the others)."""
    sampled = [learner.next_batches() if on else None for learner, on in zip(self._learners, active)]
    template = next(s for s in sampled if s is not None)
    blank = (None, jax.tree.map(np.zeros_like, template[1]), np.ones_like(template[2]))
    sampled_or_blank = [s or blank for s in sampled]
    data = jax.tree.map(lambda *xs: np.stack(xs), *[s[1] for s in sampled_or_blank])
    weights = np.stack([s[2] for s in sampled_or_blank])
    new_state, metrics, priorities = self._sgd_steps(self._state, data, weights)
    self._state = new_state if all(active) else self._keep_inactive(np.asarray(active, bool), new_state, self._state)
    self._version += 1
    priorities, metrics = jax.device_get((priorities, metrics))  # one transfer for the group, not one per run
    results: List[Optional[Dict[str, Any]]] = []
    for k, (learner, batch) in enumerate(zip(self._learners, sampled)):
      if batch is None:
        results.append(None)
        continue
      learner._steps += len(batch[0])
      learner.write_priorities(batch[0], priorities[k])
      results.append(jax.tree.map(lambda x, k=k: x[k], metrics))
    return results

  def member_state(self, index: int) -> Any:
    return jax.tree.map(lambda x: x[index], self._state)

  def restore_member(self, index: int, state: Any) -> None:
    self._state = jax.tree.map(lambda stacked, x: stacked.at[index].set(jnp.asarray(x)), self._state, state)
    self._version += 1
    self._learners[index]._steps = int(np.asarray(state.steps))


class StackedMember:
  """Run k of a `StackedLearner` behind the learner interface its training loop and evaluator use."""

  def __init__(self, stack: StackedLearner, index: int):
    self._stack, self._index = stack, index
    self._cached_version, self._cached_variables = None, None

  @property
  def steps(self) -> int:
    return self._stack._learners[self._index].steps

  def state(self) -> Any:
    return self._stack.member_state(self._index)

  def restore(self, state: Any) -> None:
    self._stack.restore_member(self._index, state)

  def get_variables(self) -> Any:
    """Run k's variables, cut from the stack once per update (an evaluator fetches every step)."""
    if self._cached_version != self._stack._version:
      self._cached_variables = jax.tree.map(lambda x: x[self._index], self._stack.get_variables())
      self._cached_version = self._stack._version
    return self._cached_variables

  def take_diagnostics(self) -> None:
    return None
