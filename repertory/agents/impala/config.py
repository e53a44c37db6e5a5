"""IMPALA configuration (Espeholt et al. 2018, arXiv 1802.01561) with pluggable recurrent cores and
optional auxiliary losses.

Defaults carry the paper's Atari values (arXiv 1802.01561, Appendix G, Table G.1 "hyperparameters
for Atari experiments" [check: recalled, the table was not re-read for this file]): unroll length 20,
batch 32, discount 0.99, baseline cost 0.5, entropy cost 0.01, RMSProp with learning rate 6e-4,
decay 0.99, momentum 0, ε 0.01, global-norm gradient clipping 40. The public implementation
(deepmind/scalable_agent, experiment.py flags) uses the same RMSProp decay and momentum, with ε 0.1
and learning rate 4.8e-4 for DMLab. `optimizer="adam"` is offered for small CPU runs
(Kingma & Ba 2015, arXiv 1412.6980, default β's) — the memory benchmark uses it.
"""

import dataclasses
from typing import ClassVar, Tuple

from repertory.errors import ConfigError
from repertory.plasticity.config import INTERVENTION_NAMES, PlasticityConfig

OPTIMIZERS = ("rmsprop", "adam")
GRADIENT_SIMILARITY = ("none", "weighted", "gate")
DISTILLATION_KINDS = ("none", "teacher", "on_policy", "entropy_regularised", "n_distill",
                      "expected_entropy_regularised")


@dataclasses.dataclass(frozen=True)
class IMPALAConfig(PlasticityConfig):
  INTERVENTIONS: ClassVar[Tuple[str, ...]] = INTERVENTION_NAMES

  # Learning (arXiv 1802.01561, Table G.1 [check]).
  unroll_length: int = 20  # T transitions per sequence (+1 bootstrap observation).
  batch_size: int = 32
  discount: float = 0.99
  baseline_cost: float = 0.5  # c_v.
  entropy_cost: float = 0.01  # c_H.
  vtrace_lambda: float = 1.0  # λ = 1 in all IMPALA experiments (Sec. 5).
  clip_rho: float = 1.0  # ρ̄ (Sec. 4.1).
  clip_pg_rho: float = 1.0  # ρ̄ in the PG advantage (Sec. 4.2).
  optimizer: str = "rmsprop"  # "rmsprop" (the paper) or "adam".
  learning_rate: float = 6e-4  # Table G.1 (Atari) [check]; DMLab runs sample it.
  rmsprop_decay: float = 0.99
  rmsprop_epsilon: float = 0.01  # Table G.1 (Atari) [check]; scalable_agent's flag default is 0.1.
  rmsprop_momentum: float = 0.0
  adam_epsilon: float = 1e-8
  max_gradient_norm: float = 40.0
  reward_clip: float = 0.0  # > 0 clips rewards to [−c, c] (IMPALA Atari: 1). 0 = off.
  # Network.
  core: str = "lstm"  # one of `repertory.networks.cores.CORE_NAMES`; "none" is a feed-forward baseline.
  core_size: int = 128  # hidden size handed to make_core (the paper's LSTM: 256).
  hidden_sizes: Tuple[int, ...] = (128,)  # MLP torso for vector observations.
  # Sequences and replay (an IMPALA queue: each sequence is used once).
  sequence_period: int = 0  # steps between sequence starts; 0 = unroll_length (no overlap).
  end_of_episode: str = "continue"  # "continue" (unroll through episode ends) or "pad".
  max_queue_size: int = 0  # sequences the queue holds; 0 = 4·batch_size.
  variable_update_period: int = 0  # actor steps between parameter fetches; 0 = unroll_length.
  evaluation_greedy: bool = False  # evaluate with argmax instead of sampling π.
  # KL to a learned default policy (Galashov et al., arXiv 1905.01240). 0 = off.
  default_policy_kl_weight: float = 0.0  # α; the loss module suggests 0.01 (losses/kl_default_policy.py).
  default_policy_view: str = "observation"  # "observation" | "none" | "slice:START:STOP" (of the flat observation).
  # Policy distillation from a teacher run (Czarnecki et al., arXiv 1902.02186).
  distillation_kind: str = "none"  # one of DISTILLATION_KINDS.
  distillation_weight: float = 1.0
  teacher_run_dir: str = ""  # a repertory run dir with config.json and checkpoints/ (an impala run).
  # PPR auxiliary policy-matching loss (Stooke et al., arXiv 2006.15223); core="ppr" only. 0 = off.
  ppr_aux_weight: float = 0.0  # β_ppr; the loss module's suggested value is 0.01.
  ppr_aux_direction: str = "forward"
  gradient_similarity: str = "none"  # "weighted" / "gate" (Du et al., arXiv 1812.02224) for the PPR aux loss.

  def __post_init__(self):
    super().__post_init__()
    from repertory.networks.cores import check_core
    check_core(self.core, hidden_size=self.core_size)
    if self.unroll_length < 2:
      raise ConfigError(f"impala unroll_length must be >= 2 (T transitions + a bootstrap), got {self.unroll_length}")
    if self.batch_size < 1:
      raise ConfigError(f"impala batch_size must be >= 1, got {self.batch_size}")
    if self.optimizer not in OPTIMIZERS:
      raise ConfigError(f"impala optimizer '{self.optimizer}' is unknown; choose one of {', '.join(OPTIMIZERS)}")
    if not 0 <= self.sequence_period <= self.unroll_length:
      raise ConfigError(f"impala sequence_period must be in [0, unroll_length={self.unroll_length}], got {self.sequence_period}")
    if self.end_of_episode not in ("continue", "pad"):
      raise ConfigError(f"impala end_of_episode must be 'continue' or 'pad', got '{self.end_of_episode}'")
    if self.gradient_similarity not in GRADIENT_SIMILARITY:
      raise ConfigError(f"impala gradient_similarity must be one of {', '.join(GRADIENT_SIMILARITY)}, got '{self.gradient_similarity}'")
    if self.distillation_kind not in DISTILLATION_KINDS:
      raise ConfigError(f"impala distillation_kind '{self.distillation_kind}' is unknown; choose one of {', '.join(DISTILLATION_KINDS)}")
    if self.distillation_kind != "none" and not self.teacher_run_dir:
      raise ConfigError(f"impala distillation_kind '{self.distillation_kind}' needs teacher_run_dir (a finished impala run dir)")
    if self.ppr_aux_weight > 0 and self.core != "ppr":
      raise ConfigError(f"impala ppr_aux_weight needs core=ppr, got core={self.core}")
    if self.gradient_similarity != "none" and self.ppr_aux_weight <= 0:
      raise ConfigError("impala gradient_similarity weights the PPR aux loss; set ppr_aux_weight > 0 (and core=ppr)")
    if self.default_policy_kl_weight < 0:
      raise ConfigError(f"impala default_policy_kl_weight must be >= 0, got {self.default_policy_kl_weight}")
    view = self.default_policy_view
    if view not in ("observation", "none") and not _is_slice(view):
      raise ConfigError(f"impala default_policy_view '{view}' is unknown; use observation, none or slice:START:STOP")

  @property
  def period(self) -> int:
    return self.sequence_period or self.unroll_length

  @property
  def queue_size(self) -> int:
    return self.max_queue_size or 4 * self.batch_size

  @property
  def updates_per_actor_step(self) -> float:
    """For `sync` runs: one update per batch of fresh sequences, i.e. 1 / (period · batch)."""
    return 1.0 / (self.period * self.batch_size)


def _is_slice(view: str) -> bool:
  parts = view.split(":")
  return len(parts) == 3 and parts[0] == "slice" and all(p.lstrip("-").isdigit() for p in parts[1:])


def parse_slice(view: str) -> slice:
  _, start, stop = view.split(":")
  return slice(int(start), int(stop))
