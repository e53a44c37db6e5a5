"""Research losses: pure functions over time-major / batched arrays (rlax style)."""

from repertory.losses.distillation import (
    KINDS as DISTILLATION_KINDS,
    cross_entropy,
    distillation_loss,
    entropy_regularised_loss,
    entropy_regularised_pseudo_rewards,
    expected_entropy_regularised_loss,
    expected_entropy_regularised_pseudo_rewards,
    n_distill_loss,
    n_distill_pseudo_rewards,
    on_policy_distill_loss,
    teacher_distill_loss,
    teacher_value_pseudo_rewards,
)
from repertory.losses.dqn import DoubleQOutput, categorical_double_q_nstep, double_q_nstep_loss
from repertory.losses.gpl import (
    GPLConfig,
    actor_beta,
    beta_optimizer,
    critic_uncertainty,
    dual_td_beta_loss,
    optimistic_shift,
    pessimistic_target,
)
from repertory.losses.gradient_similarity import (
    combine_gradients,
    tree_cosine_similarity,
    tree_vdot,
)
from repertory.losses.kl_default_policy import (
    KLDefaultPolicyConfig,
    default_policy_loss,
    kl_to_default,
    policy_kl_loss,
    regularised_reward,
)
from repertory.losses.ppr_aux import PPRAuxConfig, ppr_aux_loss
from repertory.losses.vtrace import (
    VTraceReturns,
    masked_mean,
    vtrace_actor_critic_loss,
    vtrace_returns,
)

__all__ = [
    "DISTILLATION_KINDS",
    "DoubleQOutput",
    "GPLConfig",
    "KLDefaultPolicyConfig",
    "PPRAuxConfig",
    "VTraceReturns",
    "actor_beta",
    "beta_optimizer",
    "categorical_double_q_nstep",
    "combine_gradients",
    "critic_uncertainty",
    "cross_entropy",
    "default_policy_loss",
    "distillation_loss",
    "double_q_nstep_loss",
    "dual_td_beta_loss",
    "entropy_regularised_loss",
    "entropy_regularised_pseudo_rewards",
    "expected_entropy_regularised_loss",
    "expected_entropy_regularised_pseudo_rewards",
    "kl_to_default",
    "masked_mean",
    "n_distill_loss",
    "n_distill_pseudo_rewards",
    "on_policy_distill_loss",
    "optimistic_shift",
    "pessimistic_target",
    "policy_kl_loss",
    "ppr_aux_loss",
    "regularised_reward",
    "teacher_distill_loss",
    "teacher_value_pseudo_rewards",
    "tree_cosine_similarity",
    "tree_vdot",
    "vtrace_actor_critic_loss",
    "vtrace_returns",
]
