"""The plasticity diagnostics a learner computes every `diagnostics_period` updates on a fixed probe batch.

`make_diagnose(forward, loss_grads, optimizer, settings)` builds one pure function
    diagnose(params, state, opt_state, probe, key) → {metric name: scalar}
of the parameters being diagnosed, the learner's whole training state, the parameters' optimiser state
and the probe batch, from what the agent knows how to do (run its network on the probe batch; take its
loss's gradient), with
  srank, sv_max, sv_max_share                of the penultimate activations (`measures`),
  dormant/<layer>                             fraction of τ-dormant units among the activations <layer> reads,
  linear_probe_r2/<layer>                     held-out R² of the network's outputs from those activations,
  weight_norm/<module>, grad_norm/<module>,   the module's parameters, the loss gradient on the probe batch
  update_norm/<module>                        and the optimiser update it would make (optimiser state unchanged),
  probe_loss                                  the plasticity probe (`probes.plasticity_probe`).
each group computed when its name is in `settings.names` (`DIAGNOSTIC_NAMES`: srank, dormant, linear_probe,
norms, probe). It never changes the training state, so a learner trains the same with diagnostics on and off.

`Diagnostics` is the host side: it keeps the first batch it is given as the probe batch (a fixed probe, as
Kumar et al. 2021 and Sokar et al. 2023 measure), runs `diagnose` when a period is crossed and holds the
row until the training loop takes it (`LearnerBase.take_diagnostics`).
"""

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

import chex
import jax
import jax.numpy as jnp
import optax

from repertory.plasticity import measures, probes
from repertory.plasticity.activations import record_layer_inputs


DIAGNOSTIC_NAMES = ("srank", "dormant", "linear_probe", "norms", "probe")


@dataclasses.dataclass(frozen=True)
class DiagnosticsSettings:
  period: int = 0  # learner updates between diagnostics; 0: off
  dormant_threshold: float = measures.DORMANT_THRESHOLD
  srank_delta: float = measures.SRANK_DELTA
  probe_steps: int = probes.PROBE_STEPS
  probe_learning_rate: float = probes.PROBE_LEARNING_RATE
  names: Tuple[str, ...] = DIAGNOSTIC_NAMES  # the diagnostics computed


Forward = Callable[[Any, Any, Any, jax.Array], Any]  # (params, state, probe, key) → outputs pytree [B, ...]
LossGrads = Callable[[Any, Any, Any, jax.Array], Any]  # (params, state, probe, key) → gradients like params


def _flat(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1)


def _outputs_matrix(outputs: Any, batch: int) -> jax.Array:
  """The forward's outputs as [B, K]; every output must put the batch first."""
  for x in jax.tree.leaves(outputs):
    chex.assert_axis_dimension(x, 0, batch)
  return jnp.concatenate([x.reshape(batch, -1) for x in jax.tree.leaves(outputs)], axis=1)


def _activation_metrics(outputs: Any, inputs: list, settings: DiagnosticsSettings, wanted: set
                        ) -> Dict[str, jax.Array]:
  """srank and the spectrum of the penultimate activations, dormant fractions and linear probes per layer."""
  metrics: Dict[str, jax.Array] = {}
  if not inputs:
    return metrics
  batch = inputs[-1].activation.shape[0]
  if "srank" in wanted:
    penultimate = _flat(inputs[-1].activation)
    metrics["srank"] = measures.srank(penultimate, settings.srank_delta)
    metrics.update(measures.spectrum_summary(penultimate))
  targets = jax.lax.stop_gradient(_outputs_matrix(outputs, batch))
  for layer_input in inputs:
    if "dormant" in wanted:
      metrics[f"dormant/{layer_input.layer}"] = measures.dormant_fraction(layer_input.activation,
                                                                          settings.dormant_threshold)
    if "linear_probe" in wanted and layer_input.activation.shape[0] == batch and batch >= 4:
      metrics[f"linear_probe_r2/{layer_input.layer}"] = probes.linear_probe_r2(_flat(layer_input.activation), targets)
  return metrics


def make_diagnose(forward: Forward, loss_grads: LossGrads, optimizer: optax.GradientTransformation,
                  settings: DiagnosticsSettings, reads_inputs: Callable[[str], bool] = lambda layer: False
                  ) -> Callable[..., Dict[str, jax.Array]]:
  """`reads_inputs(layer)`: the layers fed network inputs rather than activations (`activations`)."""
  recorded_forward = record_layer_inputs(forward, reads_inputs)
  wanted = set(settings.names)

  def diagnose(params, state, opt_state, probe, key) -> Dict[str, jax.Array]:
    forward_key, probe_key, grad_key = jax.random.split(key, 3)
    metrics: Dict[str, jax.Array] = {}
    if wanted & {"srank", "dormant", "linear_probe"}:
      outputs, inputs = recorded_forward(params, state, probe, forward_key)
      metrics.update(_activation_metrics(outputs, inputs, settings, wanted))
    if "norms" in wanted:
      grads = loss_grads(params, state, probe, grad_key)
      updates, _ = optimizer.update(grads, opt_state, params)
      for kind, tree in (("weight_norm", params), ("grad_norm", grads), ("update_norm", updates)):
        metrics.update({f"{kind}/{name}": norm for name, norm in measures.module_norms(tree).items()})
    if "probe" in wanted:
      metrics["probe_loss"] = probes.plasticity_probe(lambda p: forward(p, state, probe, forward_key), params,
                                                      probe_key, settings.probe_steps, settings.probe_learning_rate)
    return metrics

  return diagnose


class Diagnostics:
  """Runs `diagnose` on a fixed probe batch each time the learner's update count crosses a period."""

  def __init__(self, diagnose: Callable[..., Dict[str, jax.Array]], period: int, seed: int = 0):
    self._diagnose = jax.jit(diagnose)
    self._period = period
    self._key = jax.random.PRNGKey(seed)  # the same probe targets every time: curves show the network changing
    self._probe: Optional[Any] = None
    self._last_steps: Optional[int] = None
    self._row: Optional[Dict[str, float]] = None

  def observe(self, steps: int, batch: Any, params: Any, state: Any, opt_state: Any) -> None:
    """After an update: keep the first batch as the probe, and diagnose when `steps` crossed a period."""
    if self._probe is None:
      self._probe = jax.tree.map(jnp.asarray, batch)
    previous = steps - 1 if self._last_steps is None else self._last_steps
    self._last_steps = steps
    if steps // self._period > previous // self._period:
      metrics = jax.device_get(self._diagnose(params, state, opt_state, self._probe, self._key))
      self._row = {"learner_steps": steps, **{k: float(v) for k, v in metrics.items()}}

  def take(self) -> Optional[Dict[str, float]]:
    row, self._row = self._row, None
    return row
