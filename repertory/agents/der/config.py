"""Data-efficient Rainbow (DER) configuration.

van Hasselt, Hessel & Aslanides, "When to use parametric models in reinforcement learning?",
NeurIPS 2019, arXiv 1906.05243 (Appendix, table of DER hyper-parameters), as run for Atari 100k by
Dopamine `dopamine/labs/atari_100k/configs/DER.gin` (google/dopamine) and its
`JaxFullRainbowAgent`. Sources are given next to every default: [paper] = arXiv 1906.05243 table,
[gin] = DER.gin, [rainbow] = Hessel et al. 2018, arXiv 1710.02298, Table 1.
"""

import dataclasses
from typing import ClassVar, Dict, Tuple

from repertory.errors import ConfigError
from repertory.plasticity.config import INTERVENTION_NAMES, PlasticityConfig


@dataclasses.dataclass(frozen=True)
class DERConfig(PlasticityConfig):
  """DER defaults for Atari 100k (100k agent steps)."""

  INTERVENTIONS: ClassVar[Tuple[str, ...]] = INTERVENTION_NAMES

  encoder: str = "der"  # any of `networks.encoders`: der = DataEfficientCNN [paper]; alix: A-LIX (arXiv 2207.00986); hyperbolic: S-RYM (arXiv 2210.01542).
  encoder_layers: str = "der"  # the conv stack of encoders that take several (alix, hyperbolic): der [paper], nature (DQN's, Mnih et al. 2015), drqv2.
  augmentation_pad: int = 4  # random-shift pad for encoders with an augmentation (drq): ±4 px, DrQ (Kostrikov et al. 2020, arXiv 2004.13649).
  discount: float = 0.99  # [gin] JaxDQNAgent.gamma = 0.99; [paper] 0.99.
  n_step: int = 10  # [gin] update_horizon = 10 ("Use 10 instead of 20 as done by SPR paper"); [paper] uses 20.
  learning_rate: float = 1e-4  # [gin] create_optimizer.learning_rate = 0.0001; [paper] 0.0001.
  adam_eps: float = 1.5e-4  # [gin] create_optimizer.eps = 0.00015; [paper] 1.5e-4.
  max_gradient_norm: float = 10.0  # [paper] "max gradient norm 10" (Dopamine does not clip).
  batch_size: int = 32  # [gin] OutOfGraphPrioritizedReplayBuffer.batch_size = 32; [paper] 32.
  target_update_period: int = 2000  # learner updates; [gin] target_update_period = 2000 ("Target every 2000 updates"); [paper] 2000 updates.
  updates_per_actor_step: float = 1.0  # [gin] update_period = 1, num_updates_per_train_step = 1; [paper] 1 update per env step.
  # Distributional head (C51, Bellemare et al. 2017, arXiv 1707.06887).
  num_atoms: int = 51  # [gin] num_atoms = 51; [paper] 51.
  v_max: float = 10.0  # [gin] vmax = 10. (vmin = −vmax); [paper] [−10, 10].
  hidden_size: int = 256  # [paper] "hidden units 256" (Rainbow: 512) in each dueling stream.
  noisy_sigma_zero: float = 0.1  # [paper] "noisy nets parameter 0.1" ([rainbow]: 0.5).
  reward_clip: float = 1.0  # rewards clipped to [−1, 1] ([paper], [rainbow]; Dopamine clips in the agent); 0 = no clipping.
  # Prioritised replay (Schaul et al. 2016, arXiv 1511.05952).
  min_replay_size: int = 1_600  # [gin] min_replay_history = 1600; [paper] 1600.
  max_replay_size: int = 100_000  # the whole 100k run ([gin]: 1M "as a proxy for unbounded memory").
  priority_exponent: float = 0.5  # α; [paper] 0.5; [gin] (Dopamine stores √loss = α 0.5).
  importance_sampling_exponent: float = 0.4  # β0, annealed linearly to 1; [paper] 0.4 → 1 (Dopamine keeps β = 0.5 fixed).
  importance_sampling_anneal_steps: int = 98_400  # learner updates over the run: 100k steps − 1600 warm-up.
  samples_per_insert_tolerance: float = 3_200.0  # Reverb rate-limiter slack for `ray` runs (100 batches).
  # Acting.
  epsilon_train: float = 0.0  # noisy nets explore ([rainbow]: ε = 0); Dopamine's identity_epsilon keeps [gin] epsilon_train 0.01.
  epsilon_eval: float = 0.001  # [gin] epsilon_eval = 0.001 (Atari 100k protocol).
  epsilon_decay_steps: int = 2_000  # without noisy layers (hyperbolic): 1 → 0.01 after warm-up, [gin] epsilon_decay_period = 2000.
  epsilon_floor_without_noise: float = 0.01  # [gin] epsilon_train = 0.01 (Dopamine's linearly_decaying_epsilon).
  variable_update_period: int = 1  # actor steps between parameter fetches (sync: always fresh; ray: raise it).
  random_steps: int = 0  # first training steps with uniform random actions ([gin]: none; noisy nets act from step 0).

  # Published settings as DERConfig overrides (`--preset NAME` of `repertory train` and `bench atari100k`).
  PRESETS: ClassVar[Dict[str, Dict[str, str]]] = {
      # A-LIX on Atari 100k, Cetin et al. 2022, arXiv 2207.00986, Sec. 5.2 and Table 7: DER with its encoder
      # (`networks.encoders` "alix-atari"), 3-step returns, 2 updates per step, the target network every update,
      # Adam ε 1.5e-5 and 1600 random steps; the rest as DER (batch 32, lr 1e-4, 1600 warm-up, noisy σ₀ 0.1).
      "alix-paper": {"encoder": "alix-atari", "n_step": "3", "updates_per_actor_step": "2",
                     "target_update_period": "1", "adam_eps": "1.5e-5", "random_steps": "1600"},
  }

  def __post_init__(self):
    super().__post_init__()
    from repertory.networks.encoders import check_encoder_layers
    check_encoder_layers(self.encoder, self.encoder_layers, default="der")
    if self.n_step < 1 or self.batch_size < 1 or self.num_atoms < 2 or self.target_update_period < 1:
      raise ConfigError("DER needs n_step >= 1, batch_size >= 1, num_atoms >= 2 and target_update_period >= 1")
    if self.v_max <= 0:
      raise ConfigError(f"DER v_max must be > 0 (support is [-v_max, v_max]), got {self.v_max}")
    if self.random_steps < 0:
      raise ConfigError(f"DER random_steps must be >= 0, got {self.random_steps}")
    if self.updates_per_actor_step <= 0:
      raise ConfigError(f"DER updates_per_actor_step must be > 0, got {self.updates_per_actor_step}")

  @property
  def samples_per_insert(self) -> float:
    """The replay ratio the Reverb rate limiter keeps (`ray` runs): batch size × updates per step."""
    return self.batch_size * self.updates_per_actor_step
