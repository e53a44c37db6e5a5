"""SAC configuration (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications", arXiv 1812.05905).

Defaults are the paper's Table 1 (Appendix D) unless noted: Adam lr 3e-4 for actor, critics and
temperature; batch 256; γ 0.99; 2 hidden layers of 256 ReLU units; replay 1e6; target smoothing
τ 0.005; one gradient step per environment step; target entropy −|A|. Pessimism: `penalty="clipped"`
(min over critics, Fujimoto et al. 2018 / SAC v2) or `penalty="gpl"` (learned β by dual TD,
Cetin & Celiktutan, arXiv 2110.03375; `repertory.losses.gpl`). Pixel settings follow DrQ-v2
(Yarats et al. 2021, arXiv 2107.09645, Table 1) and A-LIX (arXiv 2207.00986).
"""

import dataclasses
from typing import ClassVar, Optional, Tuple

from repertory.errors import ConfigError
from repertory.plasticity.config import PlasticityConfig

PENALTIES = ("clipped", "gpl")


@dataclasses.dataclass(frozen=True)
class SACConfig(PlasticityConfig):
  INTERVENTIONS: ClassVar[Tuple[str, ...]] = ("injection", "shrink_perturb", "redo", "topkast")

  discount: float = 0.99  # γ, arXiv 1812.05905 Table 1.
  n_step: int = 1  # SAC uses 1-step targets; DrQ-v2 (arXiv 2107.09645, Table 1) uses 3 from pixels.
  learning_rate: float = 3e-4  # actor and critic Adam lr, arXiv 1812.05905 Table 1.
  temperature_learning_rate: float = 3e-4  # same Table 1 value for α.
  batch_size: int = 256  # arXiv 1812.05905 Table 1.
  hidden_sizes: Tuple[int, ...] = (256, 256)  # arXiv 1812.05905 Table 1 (2 layers × 256, ReLU).
  num_critics: int = 2  # clipped double-Q (SAC v2); GPL needs >= 2.
  tau: float = 0.005  # Polyak target smoothing, arXiv 1812.05905 Table 1.
  init_temperature: float = 1.0  # α₀ = exp(log α₀ = 0), as the authors' softlearning code.
  target_entropy_per_action_dim: float = -1.0  # H̄ = −|A|, arXiv 1812.05905 Sec. 5 / Table 1.
  log_std_min: float = -20.0  # softlearning's clip of the Gaussian's log std.
  log_std_max: float = 2.0
  updates_per_actor_step: float = 1.0  # gradient steps per env step (UTD ratio), arXiv 1812.05905 Table 1;
  # GPL-SAC on MuJoCo uses a higher UTD (arXiv 2110.03375) — set it here (each learner.step() is one update).
  # Pessimism.
  penalty: str = "clipped"  # "clipped" (min over critics) or "gpl" (arXiv 2110.03375).
  beta_init: float = 0.5  # GPL β₀ (= clipped double-Q with 2 critics); authors' later code (arXiv 2110.03375).
  beta_learning_rate: float = 1e-4  # GPL dual-TD Adam lr; authors' later code (arXiv 2110.03375).
  beta_b1: float = 0.5  # GPL dual-TD Adam β1; authors' later code (arXiv 2110.03375).
  optimism_init: float = 0.0  # GPL optimistic actor shift s₀ ≤ 0 (0 = off; value not checked).
  optimism_anneal_steps: int = 0  # learner steps over which s_t → 0.
  # Replay.
  min_replay_size: int = 1_000  # uniform random actions until each actor has taken this many steps.
  max_replay_size: int = 1_000_000  # arXiv 1812.05905 Table 1.
  samples_per_insert_tolerance: Optional[float] = None  # Reverb error buffer (None: table default).
  # Pixels (only used when observations are images [H, W, C]).
  encoder: str = "alix"  # any stateless `networks.encoders`: "alix": A-LIX (arXiv 2207.00986); "drq": DrQ-v2 conv + random shifts (pad 4).
  feature_dim: int = 50  # DrQ-v2 trunk Linear → LayerNorm → tanh, arXiv 2107.09645 Table 1.
  pixel_learning_rate: float = 1e-4  # DrQ-v2 lr, arXiv 2107.09645 Table 1 (used for pixel runs).
  random_shift_pad: int = 4  # DrQ-v2 augmentation pad (arXiv 2107.09645 Sec. 3.1).
  # Acting.
  variable_update_period: int = 1  # actor steps between parameter fetches (1: sync-exact SAC).

  def __post_init__(self):
    super().__post_init__()
    if self.penalty not in PENALTIES:
      raise ConfigError(f"unknown sac penalty '{self.penalty}'; choose one of {', '.join(PENALTIES)}")
    from repertory.networks.encoders import get_encoder
    if get_encoder(self.encoder).has_state:
      raise ConfigError(f"sac encoder '{self.encoder}' keeps Haiku state, which sac's encoder does not carry; "
                        "use alix, drq, der, nature or impala-resnet")
    if self.num_critics < 2:
      raise ConfigError(f"sac needs num_critics >= 2 (clipped double-Q / GPL), got {self.num_critics}")
    if not 0.0 < self.tau <= 1.0:
      raise ConfigError(f"sac tau must be in (0, 1], got {self.tau}")
    if self.updates_per_actor_step <= 0:
      raise ConfigError(f"sac updates_per_actor_step must be > 0, got {self.updates_per_actor_step}")
    if self.n_step < 1 or self.batch_size < 1:
      raise ConfigError(f"sac n_step and batch_size must be >= 1, got {self.n_step} and {self.batch_size}")
    if self.injection_step and len(self.hidden_sizes) < 2:
      raise ConfigError(f"sac injection needs at least 2 hidden layers (the last one and the outputs are the "
                        f"injected head), got hidden_sizes={','.join(map(str, self.hidden_sizes))}")
    if self.init_temperature <= 0:
      raise ConfigError(f"sac init_temperature must be > 0, got {self.init_temperature}")

  @property
  def samples_per_insert(self) -> float:
    """The replay ratio the Reverb rate limiter keeps for distributed runs: UTD × batch."""
    return self.updates_per_actor_step * self.batch_size

  def gpl_config(self):
    from repertory.losses.gpl import GPLConfig
    return GPLConfig(beta_init=self.beta_init, beta_lr=self.beta_learning_rate, beta_b1=self.beta_b1,
                     optimism_init=self.optimism_init, optimism_anneal_steps=self.optimism_anneal_steps)
