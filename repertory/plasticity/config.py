"""The plasticity fields every agent config carries (each agent's config subclasses `PlasticityConfig`), so
`--config diagnostics_period=N` and the interventions are set the same way for DQN, DER, IMPALA and SAC."""

import dataclasses
from typing import ClassVar, Optional, Tuple

from repertory.errors import ConfigError
from repertory.networks import sparse
from repertory.plasticity import measures, probes, resets
from repertory.plasticity.diagnostics import DIAGNOSTIC_NAMES, DiagnosticsSettings


@dataclasses.dataclass(frozen=True)
class PlasticityConfig:
  # The interventions (of `INTERVENTION_NAMES`) this agent's learner and networks carry out.
  INTERVENTIONS: ClassVar[Tuple[str, ...]] = ()
  diagnostics_period: int = 0  # learner updates between plasticity diagnostics on a fixed probe batch; 0: off
  diagnostics: str = "all"  # which diagnostics: "all" or a comma-separated list of `DIAGNOSTIC_NAMES`
  dormant_threshold: float = measures.DORMANT_THRESHOLD  # τ (Sokar et al. 2023, §4)
  probe_steps: int = probes.PROBE_STEPS  # K Adam steps of the plasticity probe
  # Plasticity injection (Nikishin et al. 2023, arXiv 2305.15555) after this many learner updates; 0: never.
  # Injected once, part-way through training, as in the paper; the step is the caller's choice (no paper default).
  injection_step: int = 0
  # LayerNorm before each hidden non-linearity of the MLP torsos and heads (Lyle et al. 2023, arXiv 2303.01486).
  layer_norm: bool = False
  # The linear layers of the MLP torsos and heads: dense, powerprop (Schwarz et al. 2021, arXiv 2110.00296) or
  # topkast (Jayakumar et al. 2020, arXiv 2106.03517; its exploration penalty joins the loss on the SGD learner).
  layer_kind: str = "dense"
  # Shrink-and-perturb θ ← λθ + σ·θ_fresh every this many learner updates (Ash & Adams 2020, arXiv 1910.08475); 0: never.
  shrink_perturb_period: int = 0
  shrink_factor: float = resets.SHRINK  # λ
  perturb_scale: float = resets.PERTURB  # σ
  # ReDo (Sokar et al. 2023, arXiv 2302.12902, Alg. 1) every this many learner updates, at dormant_threshold τ;
  # 0: never. The paper's reset period is a tuned hyperparameter; no default is taken from it.
  redo_period: int = 0
  # Zero the optimiser moments (Adam's μ, ν) of the weights ReDo recycles, as the authors' released ReDo code does
  # (Dopamine, labs/redo, `reset_momentum`); false keeps them (Algorithm 1 names the weights only).
  redo_reset_moments: bool = True
  # Evaluate with this fraction of every weight tensor zeroed by magnitude (Powerprop prunes after training,
  # Schwarz et al. 2021, arXiv 2110.00296, §4; the paper sweeps the sparsity, so no default is taken); 0: dense.
  eval_sparsity: float = 0.0

  def __post_init__(self):
    check_plasticity(self)

  def reset(self, initialise, reads_inputs=lambda layer: False,
            recycles=lambda layer: True) -> Tuple[Optional[resets.Reset], int]:
    """The scheduled reset the learner runs and its period in updates: (None, 0) when none is set;
    `initialise(key)` gives fresh parameters, `reads_inputs` and `recycles` as `redo.redo_reset`'s."""
    if self.shrink_perturb_period:
      return resets.make_shrink_perturb(initialise, self.shrink_factor, self.perturb_scale), self.shrink_perturb_period
    if self.redo_period:
      return (resets.make_redo(initialise, self.dormant_threshold, reads_inputs, self.redo_reset_moments, recycles),
              self.redo_period)
    return None, 0

  def weight_penalty(self):
    """params → the Top-KAST exploration penalty of its Top-KAST layers (arXiv 2106.03517, §2.3), or None."""
    if self.layer_kind != "topkast":
      return None
    return lambda params: sparse.topkast_penalty({m: v for m, v in params.items()
                                                  if "topkast_linear_" in m or "topkast_conv_" in m})

  def diagnostics_settings(self) -> DiagnosticsSettings:
    return DiagnosticsSettings(period=self.diagnostics_period, dormant_threshold=self.dormant_threshold,
                               probe_steps=self.probe_steps, names=diagnostic_names(self.diagnostics))


INTERVENTION_NAMES = ("injection", "shrink_perturb", "redo", "topkast")


def diagnostic_names(selection: str) -> Tuple[str, ...]:
  """"all" or "srank,dormant,..." → the diagnostics' names; ConfigError naming an unknown one."""
  if selection.strip() == "all":
    return DIAGNOSTIC_NAMES
  names = tuple(name.strip() for name in selection.split(",") if name.strip())
  unknown = [name for name in names if name not in DIAGNOSTIC_NAMES]
  if unknown or not names:
    raise ConfigError(f"unknown diagnostic '{unknown[0] if unknown else selection}'; set diagnostics=all or a "
                      f"comma-separated list of {', '.join(DIAGNOSTIC_NAMES)}")
  return names


def check_plasticity(config: PlasticityConfig) -> None:
  if config.diagnostics_period < 0:
    raise ConfigError(f"diagnostics_period={config.diagnostics_period} must be >= 0 (0 turns diagnostics off)")
  if not 0.0 <= config.dormant_threshold < 1.0:
    raise ConfigError(f"dormant_threshold={config.dormant_threshold} must be in [0, 1) (Sokar et al.: 0.025)")
  if config.probe_steps < 1:
    raise ConfigError(f"probe_steps={config.probe_steps} must be >= 1")
  if config.injection_step < 0:
    raise ConfigError(f"injection_step={config.injection_step} must be >= 0 (learner updates; 0: no injection)")
  if config.layer_kind not in sparse.LAYER_KINDS:
    raise ConfigError(f"unknown layer_kind '{config.layer_kind}'; choose one of {', '.join(sparse.LAYER_KINDS)}")
  diagnostic_names(config.diagnostics)
  if not 0.0 <= config.eval_sparsity < 1.0:
    raise ConfigError(f"eval_sparsity={config.eval_sparsity} is outside [0, 1); use the fraction of each weight "
                      "tensor to zero for evaluation, e.g. 0.9 (0: dense)")
  resets.check_shrink_perturb(config.shrink_perturb_period, config.shrink_factor, config.perturb_scale)
  if config.redo_period < 0:
    raise ConfigError(f"redo_period={config.redo_period} must be >= 0 (learner updates between ReDo resets; 0: never)")
  if config.redo_period and config.shrink_perturb_period:
    raise ConfigError("redo_period and shrink_perturb_period are both set; choose one scheduled reset")
  requested = {"injection": ("injection_step", config.injection_step != 0, "injection_step=0"),
               "shrink_perturb": ("shrink_perturb_period", config.shrink_perturb_period != 0, "shrink_perturb_period=0"),
               "redo": ("redo_period", config.redo_period != 0, "redo_period=0"),
               "topkast": ("layer_kind=topkast", config.layer_kind == "topkast", "layer_kind=dense or powerprop")}
  for name, (setting, wanted, instead) in requested.items():
    if wanted and name not in config.INTERVENTIONS:
      has = ", ".join(config.INTERVENTIONS) or "none"
      raise ConfigError(f"{setting} is not available for {type(config).__name__} (it has: {has}); use {instead}")


def check_injection_budget(config: PlasticityConfig, learner_updates: int) -> None:
  """ConfigError when the injection would come after the run's last learner update."""
  if config.injection_step and config.injection_step >= learner_updates:
    raise ConfigError(f"injection_step={config.injection_step} is past this run's budget of about "
                      f"{learner_updates} learner updates; use a smaller injection_step or a longer run")
