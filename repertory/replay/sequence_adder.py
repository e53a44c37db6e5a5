"""Fixed-length sequences for recurrent actor-critic learners (IMPALA, arXiv 1802.01561, Sec. 3).

Each item holds T transitions plus the observation after the last one ("T transitions + bootstrap"),
the behaviour policy's logits μ(·|x_t), and the recurrent core state at the start of the sequence
(as stored by R2D2, Kapturowski et al. 2019, and Acme's SequenceAdder):

  observation       [T+1, ...]  x_0 … x_T (x_T only feeds the bootstrap value V(x_T))
  action            [T]         a_t
  reward            [T]         r_{t+1} (float32)
  discount          [T]         the environment's discount d_{t+1} ∈ {0, 1} (γ is applied by the learner)
  mask              [T]         1 for a real transition x_t → x_{t+1}; 0 for the transition that
                                crosses an episode boundary and for padding
  reset             [T+1]       True where x_t is the FIRST observation of an episode: the learner's
                                core unroll resets its state before x_t
  behaviour_logits  [T, A]      the actor's logits at x_t (zeros where mask = 0)
  core_state        tuple       the leaves (`jax.tree.leaves`) of the core state the actor held before
                                processing x_0 (pre-reset; `reset[0]` tells the learner to reset it).
                                A core without state stores one dummy float32 scalar.

Two ways of handling episode ends (`end_of_episode`):
  * "continue" (default; IMPALA's actors unroll through episode ends): the stream is cut into
    sequences regardless of episodes. The LAST observation x_n becomes a step of its own with a dummy
    action, zero logits, reward 0, discount 0 and mask 0 — the transition x_n → (next episode's first
    observation) that the learner must mask — and the next episode's first observation carries
    reset = True.
  * "pad": every sequence lies inside one episode. At LAST the remaining steps are written as one
    sequence padded with zero observations / actions / logits, mask 0, discount 0 and reset False;
    the next episode starts a new sequence grid.

Consecutive sequences start every `period` steps (default T: no overlap; period < T gives an overlap
of T − period steps). A sequence is written as soon as its T-th transition and the observation after
it are known.
"""

import dataclasses
from typing import Any, List, NamedTuple, Optional

import dm_env
import jax
import numpy as np

END_OF_EPISODE = ("continue", "pad")


class Sequence(NamedTuple):
  """One replay item (see the module docstring for shapes and meaning)."""

  observation: Any
  action: np.ndarray
  reward: np.ndarray
  discount: np.ndarray
  mask: np.ndarray
  reset: np.ndarray
  behaviour_logits: np.ndarray
  core_state: Any


@dataclasses.dataclass
class _Step:
  observation: Any
  core_state: Any  # tuple of leaves
  reset: bool
  action: Any = None
  behaviour_logits: Any = None
  reward: float = 0.0
  discount: float = 0.0
  mask: float = 0.0


def flatten_core_state(core_state: Any) -> tuple:
  """The core state's leaves as numpy arrays (a dummy scalar for a stateless core)."""
  leaves = [np.asarray(x) for x in jax.tree.leaves(core_state)]
  return tuple(leaves) if leaves else (np.zeros((), np.float32),)


class SequenceAdder:
  """Writes `Sequence` items of `sequence_length` transitions through `writer.insert(item, priority)`.

  Call `add_first(timestep, core_state)` at an episode's FIRST timestep and
  `add(action, next_timestep, behaviour_logits, next_core_state)` after each environment step, where
  `core_state` is the state the actor holds before processing the timestep's observation and
  `next_core_state` the state after processing the observation the action was chosen at.
  """

  SNAPSHOT_FIELDS = ("_steps", "_base", "_next_start", "_covered_end", "_current", "_template")

  def __init__(self, writer: Any, sequence_length: int, period: Optional[int] = None,
               end_of_episode: str = "continue", priority: Optional[float] = None):
    if sequence_length < 1:
      raise ValueError(f"sequence_length must be >= 1, got {sequence_length}")
    period = sequence_length if period is None else period
    if not 1 <= period <= sequence_length:
      raise ValueError(f"period must be in [1, sequence_length={sequence_length}], got {period}")
    if end_of_episode not in END_OF_EPISODE:
      raise ValueError(f"end_of_episode must be one of {END_OF_EPISODE}, got {end_of_episode!r}")
    self._writer = writer
    self._length = sequence_length
    self._period = period
    self._mode = end_of_episode
    self._priority = priority
    self._reset_grid()
    self._current: Optional[_Step] = None  # the latest observation, its action not yet known
    self._template: Optional[_Step] = None  # shapes for dummy and padding steps

  def _reset_grid(self) -> None:
    self._steps: List[_Step] = []  # complete steps, absolute indices base .. base + len − 1
    self._base = 0
    self._next_start = 0
    self._covered_end = 0  # absolute index after the last step written in some sequence

  # The actor's side.

  def add_first(self, timestep: dm_env.TimeStep, core_state: Any) -> None:
    if not timestep.first():
      raise ValueError("add_first expects a FIRST timestep")
    if self._mode == "pad" or self._current is not None:
      # "pad": each episode starts a new grid. "continue": an episode that ended without LAST (the
      # actor was reset mid-episode) cannot be continued, so its unwritten steps are dropped.
      self._reset_grid()
    self._current = _Step(timestep.observation, flatten_core_state(core_state), True)
    self._write_ready()

  def add(self, action: Any, next_timestep: dm_env.TimeStep, behaviour_logits: Any, next_core_state: Any) -> None:
    if self._current is None:
      raise ValueError("call add_first before add")
    step = self._current
    step.action = np.asarray(action)
    step.behaviour_logits = np.asarray(behaviour_logits, np.float32)
    step.reward = float(next_timestep.reward)
    step.discount = float(next_timestep.discount)
    step.mask = 1.0
    if self._template is None:
      self._template = step
    self._steps.append(step)
    self._current = _Step(next_timestep.observation, flatten_core_state(next_core_state), False)
    if not next_timestep.last():
      self._write_ready()
      return
    if self._mode == "continue":
      # x_n becomes a step whose transition (into the next episode) the learner masks.
      last = self._current
      last.action = np.zeros_like(step.action)
      last.behaviour_logits = np.zeros_like(step.behaviour_logits)
      self._steps.append(last)  # reward 0, discount 0, mask 0
      self._current = None
      self._write_ready()
    else:
      self._write_ready()
      if self._base + len(self._steps) > self._covered_end:
        self._write(self._next_start, padded=True)
      self._current = None
      self._reset_grid()

  # Sequences.

  def _write_ready(self) -> None:
    while True:
      end = self._next_start + self._length  # absolute index of the bootstrap observation
      have = self._base + len(self._steps)
      if end > have or (end == have and self._current is None):
        return
      self._write(self._next_start, padded=False)
      self._next_start += self._period
      drop = self._next_start - self._base
      del self._steps[:drop]
      self._base = self._next_start

  def _write(self, start: int, padded: bool) -> None:
    t = self._length
    steps = self._steps[start - self._base:start - self._base + t]
    observations = [s.observation for s in steps]
    resets = [s.reset for s in steps]
    if len(steps) < t:
      assert padded
      observations.append(self._current.observation)
      resets.append(self._current.reset)
      zero_obs = jax.tree.map(np.zeros_like, self._current.observation)
      observations += [zero_obs] * (t + 1 - len(observations))
      resets += [False] * (t + 1 - len(resets))
      template = self._template
      filler = _Step(zero_obs, (), False, np.zeros_like(template.action), np.zeros_like(template.behaviour_logits))
      steps = steps + [filler] * (t - len(steps))
    else:
      following = self._steps[start - self._base + t] if start - self._base + t < len(self._steps) else self._current
      observations.append(following.observation)
      resets.append(following.reset)
    item = Sequence(
        observation=jax.tree.map(lambda *xs: np.stack(xs), *observations),
        action=np.stack([s.action for s in steps]),
        reward=np.asarray([s.reward for s in steps], np.float32),
        discount=np.asarray([s.discount for s in steps], np.float32),
        mask=np.asarray([s.mask for s in steps], np.float32),
        reset=np.asarray(resets, bool),
        behaviour_logits=np.stack([s.behaviour_logits for s in steps]).astype(np.float32),
        core_state=steps[0].core_state)
    self._covered_end = max(self._covered_end, min(start + t, self._base + len(self._steps)))
    self._writer.insert(item, self._priority)


def example_sequence(observation: Any, action: Any, num_actions: int, core_state: Any, sequence_length: int) -> Sequence:
  """An all-zeros `Sequence` of the right shapes and dtypes (a Reverb table signature)."""
  t = sequence_length
  return Sequence(
      observation=jax.tree.map(lambda x: np.zeros((t + 1,) + np.shape(x), np.asarray(x).dtype), observation),
      action=np.zeros((t,) + np.shape(action), np.asarray(action).dtype),
      reward=np.zeros(t, np.float32), discount=np.zeros(t, np.float32), mask=np.zeros(t, np.float32),
      reset=np.zeros(t + 1, bool), behaviour_logits=np.zeros((t, num_actions), np.float32),
      core_state=tuple(np.zeros_like(x) for x in flatten_core_state(core_state)))
