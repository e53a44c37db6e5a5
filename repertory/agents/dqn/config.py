"""DQN configuration: double Q (van Hasselt et al. 2016), n-step returns, prioritised replay, dueling head."""

import dataclasses
from typing import ClassVar, Tuple

from repertory.plasticity.config import INTERVENTION_NAMES, PlasticityConfig


@dataclasses.dataclass(frozen=True)
class DQNConfig(PlasticityConfig):
  """Defaults learn CartPole in a few minutes on a CPU; Atari values are noted where they differ."""

  INTERVENTIONS: ClassVar[Tuple[str, ...]] = INTERVENTION_NAMES

  discount: float = 0.99
  n_step: int = 3  # Rainbow (Hessel et al. 2018, Table 1) uses 3.
  learning_rate: float = 5e-4  # CartPole sweep (BUILD_NOTES.md); Rainbow on Atari: 6.25e-5.
  adam_eps: float = 1e-8  # Rainbow on Atari: 1.5e-4.
  max_gradient_norm: float = 10.0
  huber_delta: float = 1.0
  batch_size: int = 128  # CartPole sweep (BUILD_NOTES.md); Rainbow on Atari: 32.
  target_update_period: int = 128  # SGD updates; CartPole sweep (BUILD_NOTES.md); Rainbow on Atari: 8000 frames = 2000 updates.
  sgd_steps_per_call: int = 1  # SGD updates fused into one jit call (one learner step; unrolled in the jit)
  hidden_sizes: Tuple[int, ...] = (128, 128)
  dueling: bool = True  # Wang et al. 2016.
  # Replay.
  min_replay_size: int = 1_000
  max_replay_size: int = 100_000
  updates_per_actor_step: float = 0.5  # SGD updates per environment step (the replay ratio, as in DER and SAC)
  samples_per_insert_tolerance: float = 1024.0  # rate-limiter slack for thread / ray runs: 8 batches
  priority_exponent: float = 0.6  # α, Schaul et al. 2016, Table 3 (proportional).
  importance_sampling_exponent: float = 0.4  # β0, annealed to 1 (Schaul et al. 2016, Table 3).
  importance_sampling_anneal_steps: int = 20_000  # learner steps
  # Acting.
  epsilon_start: float = 1.0
  epsilon_end: float = 0.01
  epsilon_decay_steps: int = 10_000  # actor steps of each actor
  evaluation_epsilon: float = 0.0  # Atari 100k: 0.001.
  variable_update_period: int = 100  # actor steps between parameter fetches

  @property
  def samples_per_insert(self) -> float:
    """The replay ratio the rate limiter keeps (`thread` / `ray` runs): batch size × updates per step."""
    return self.batch_size * self.updates_per_actor_step
