"""One SGD learner for the replay agents (DQN, DER), taking a loss object (as Acme's `SGDLearner`).

A loss is any callable

    loss(networks, params, target_params, inputs: LossInputs, key) -> (scalar loss, LossExtras)

pure and jit-able: `inputs` holds a batch of n-step transitions, their importance weights and the Haiku
state of the networks; the extras hold the new priorities (one per example, written back to the
replay table), the new Haiku state and metrics to log. The learner owns everything else: the
optimiser step, the periodic target copy, the annealed importance exponent β (Schaul et al. 2016,
arXiv 1511.05952, §3.4), `sgd_steps_per_call` updates fused into one jit call, checkpointable state,
data parallelism over `data_parallel`'s devices (each batch split along its batch axis), and the plasticity
diagnostics (`repertory.plasticity.diagnostics`) when `diagnostics.period` > 0, for which the loss object
also offers `forward(networks, params, net_state, transitions, key)`: the network's outputs at s_t, and the
plasticity injection (`repertory.plasticity.injection`) before the first call at or past `injection_step`,
and `reset` (shrink-and-perturb or ReDo, `repertory.plasticity.resets`) on the first call of every `reset_period`.
"""

import dataclasses
from typing import Any, Callable, Dict, Iterator, NamedTuple, Optional, Protocol, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from repertory.agents.data_parallel import DataParallel
from repertory.agents.learner_base import LearnerBase, jit_reset
from repertory.errors import ConfigError
from repertory.plasticity import injection, resets
from repertory.plasticity.diagnostics import Diagnostics, DiagnosticsSettings, make_diagnose
from repertory.replay.types import ReplayBatch, importance_weights


class LossInputs(NamedTuple):
  transitions: Any  # a `Transition` of arrays with a leading batch axis [B]
  weights: jax.Array  # [B] importance weights
  net_state: Any  # Haiku state of the networks ({} when they have none)


class LossExtras(NamedTuple):
  priorities: jax.Array  # [B] new priorities (before the table's exponent α)
  net_state: Any
  metrics: Dict[str, jax.Array]


class Loss(Protocol):
  def __call__(self, networks: Any, params: Any, target_params: Any, inputs: LossInputs,
               key: jax.Array) -> Tuple[jax.Array, LossExtras]: ...


@dataclasses.dataclass(frozen=True)
class LearnerSettings:
  target_update_period: int  # SGD updates between copies of the online parameters into the target
  importance_sampling_exponent: float  # β0, annealed linearly to 1
  importance_sampling_anneal_steps: int  # SGD updates over which β reaches 1
  sgd_steps_per_call: int = 1  # SGD updates fused into one jit call (one `step()`)


class TrainingState(NamedTuple):
  params: Any
  target_params: Any
  net_state: Any
  opt_state: Any
  key: jax.Array
  steps: jax.Array


def _stack(*xs):
  """On the host when the batches are there, so each is copied to the devices once, already split; one batch
  (one update per call) is viewed [1, ...], not copied."""
  if len(xs) == 1:
    return xs[0][None]
  return np.stack(xs) if isinstance(xs[0], np.ndarray) else jnp.stack(xs)


def frames_last(data: Any, frame_leaves: Any, numpy: Any = jnp) -> Any:
  """`data` with its stacked-frame leaves read frames-first ([..., K, H, W], `Table.as_iterator(frames_first=
  True)`) back in the observation layout [..., H, W, K]; `frame_leaves` (None: none) marks them."""
  if frame_leaves is None:
    return data
  return jax.tree.map(lambda x, frames: numpy.moveaxis(x, -3, -1) if frames else x, data, frame_leaves)


def _diagnosed(networks: Any, loss: Loss):
  """The (forward, loss gradient) pair the diagnostics need, on a probe batch of transitions."""
  if not hasattr(loss, "forward"):
    raise ConfigError(f"the loss {type(loss).__name__} has no forward(...) for diagnostics; "
                      "set diagnostics_period=0 or give the loss one")

  def forward(params, state: "TrainingState", transitions, key):
    return loss.forward(networks, params, state.net_state, transitions, key)

  def loss_grads(params, state: "TrainingState", transitions, key):
    inputs = LossInputs(transitions, jnp.ones(transitions.reward.shape[:1]), state.net_state)
    return jax.grad(lambda p: loss(networks, p, state.target_params, inputs, key)[0])(params)

  return forward, loss_grads


def _compiled_reset(reset: resets.Reset, networks: Any, loss: Loss, optimizer: optax.GradientTransformation,
                    devices: DataParallel):
  """(state, transitions) → state with `reset` applied to its parameters (and optimiser moments), jitted over
  `devices`."""

  def reset_state(state: TrainingState, transitions):
    key = jax.random.fold_in(state.key, state.steps)
    forward = lambda params, transitions: loss.forward(networks, params, state.net_state, transitions, key)  # noqa: E731
    params, opt_state = resets.apply_reset(reset, optimizer, state.params, state.opt_state, key, forward,
                                           (transitions,))
    return state._replace(params=params, opt_state=opt_state)

  return jit_reset(reset_state, devices)


def plasticity_arguments(config: Any, initialise: Callable[[jax.Array], Any]) -> Dict[str, Any]:
  """The SGDLearner keywords a `PlasticityConfig` sets; `initialise(key)` gives fresh parameters."""
  reset, reset_period = config.reset(initialise)
  return dict(diagnostics=config.diagnostics_settings(), injection_step=config.injection_step,
              reset=reset, reset_period=reset_period, penalty=config.weight_penalty())


class SGDLearner(LearnerBase):
  """Samples `sgd_steps_per_call` batches, takes that many SGD steps of `loss`, writes priorities back."""

  def __init__(self, networks: Any, loss: Loss, optimizer: optax.GradientTransformation, params: Any,
               net_state: Any, settings: LearnerSettings, iterator: Iterator[ReplayBatch],
               update_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]], key: jax.Array,
               variables_with_state: bool = False, data_parallel: Optional[DataParallel] = None,
               diagnostics: DiagnosticsSettings = DiagnosticsSettings(), injection_step: int = 0,
               reset: Optional[resets.Reset] = None, reset_period: int = 0,
               penalty: Optional[Callable[[Any], jax.Array]] = None):
    devices = self._use_devices(data_parallel)
    if injection_step:
      self._injection = injection.InjectionSchedule(injection_step)
      optimizer = optax.chain(optimizer, injection.freeze_by_injection())
    if reset is not None and reset_period:
      self._reset = _compiled_reset(reset, networks, loss, optimizer, devices)
      self._reset_schedule = resets.ResetSchedule(reset_period)
    self._settings = settings
    self._iterator = iterator
    # Batches whose frames come frames-first are put back in the observation layout on the device, inside the
    # update: there the transpose is free, on the host it is most of the sampling time (`FrameStore.gather`).
    self._frame_leaves = getattr(iterator, "frame_leaves", lambda: None)  # known once the table holds items
    self._update_priorities = update_priorities
    self._variables_with_state = variables_with_state
    self._state = devices.replicate(
        TrainingState(params, params, net_state, optimizer.init(params), key, jnp.zeros((), jnp.int32)))
    self._steps = 0  # a host copy of state.steps, so reading it never waits for the device

    def penalised_loss(networks, params, target_params, inputs, key):
      value, extras = loss(networks, params, target_params, inputs, key)
      return (value if penalty is None else value + penalty(params)), extras

    def sgd_step(state: TrainingState, transitions, weights):
      transitions = frames_last(transitions, self._frame_leaves())
      weights = weights / jnp.max(weights)  # over the global batch, wherever its rows are (Schaul et al. §3.4)
      key, loss_key = jax.random.split(state.key)
      grad_fn = jax.value_and_grad(penalised_loss, argnums=1, has_aux=True)
      (value, extras), grads = grad_fn(networks, state.params, state.target_params,
                                       LossInputs(transitions, weights, state.net_state), loss_key)
      updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
      params = optax.apply_updates(state.params, updates)
      steps = state.steps + 1
      target_params = optax.periodic_update(params, state.target_params, steps, settings.target_update_period)
      metrics = {"loss": value, "grad_norm": optax.global_norm(grads), **extras.metrics}
      new_state = TrainingState(params, target_params, extras.net_state, opt_state, key, steps)
      return new_state, metrics, extras.priorities

    def sgd_steps(state: TrainingState, transitions, weights):
      """`sgd_steps_per_call` updates; transitions and weights carry a leading [K] axis.

      Unrolled rather than `lax.scan`ned: XLA:CPU in jaxlib 0.4.34 runs convolutions inside a
      while-loop ~40x slower (BUILD_NOTES.md).
      """
      metrics, priorities = [], []
      for k in range(settings.sgd_steps_per_call):
        state, step_metrics, step_priorities = sgd_step(state, jax.tree.map(lambda x: x[k], transitions), weights[k])
        metrics.append(step_metrics)
        priorities.append(step_priorities)
      return state, jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs)), *metrics), jnp.stack(priorities)

    self.sgd_steps_fn = sgd_steps  # pure: what `StackedLearner` vmaps over K runs
    if diagnostics.period:
      self._diagnostics = Diagnostics(make_diagnose(*_diagnosed(networks, loss), optimizer, diagnostics),
                                      diagnostics.period)

    stacked = devices.batch(axis=1)  # [K, B, ...]
    self._sgd_steps = jax.jit(sgd_steps, in_shardings=(devices.replicated, stacked, stacked),
                              out_shardings=(devices.replicated, devices.replicated, stacked))

  def importance_exponent(self) -> float:
    """β annealed linearly from β0 to 1 over `importance_sampling_anneal_steps` updates."""
    s = self._settings
    fraction = min(1.0, self._steps / max(1, s.importance_sampling_anneal_steps))
    return s.importance_sampling_exponent + fraction * (1.0 - s.importance_sampling_exponent)

  def step(self) -> Dict[str, Any]:
    """`sgd_steps_per_call` updates; the metrics stay on the device (only priorities leave it)."""
    if self._inject_due():
      self._state = self.data_parallel.replicate(self._host_copy(self._state._replace(
          params=injection.inject(self._state.params), target_params=injection.inject(self._state.target_params))))
    batches, data, weights = self.next_batches()
    if self._reset_due():
      self._state = self._reset(self._state, frames_last(batches[0].data, self._frame_leaves(), np))
    data = self.data_parallel.shard(data, axis=1)
    weights = self.data_parallel.shard(weights, axis=1)
    self._state, metrics, priorities = self._sgd_steps(self._state, data, weights)
    self._steps += len(batches)
    if self._diagnostics is not None:
      self._diagnostics.observe(self._steps, frames_last(batches[0].data, self._frame_leaves(), np), self._state.params,
                                self._state, self._state.opt_state)
    self.write_priorities(batches, self.data_parallel.local(priorities, axis=1))
    return metrics

  def next_batches(self) -> Tuple[list, Any, np.ndarray]:
    """(the next `sgd_steps_per_call` batches, their data stacked [K, B, ...], importance weights [K, B]) at
    this learner's β."""
    batches = [next(self._iterator) for _ in range(self._settings.sgd_steps_per_call)]
    exponent = self.importance_exponent()
    weights = np.stack([importance_weights(b, exponent, normalise=False) for b in batches])
    return batches, jax.tree.map(_stack, *[b.data for b in batches]), weights

  def write_priorities(self, batches: list, priorities: Any) -> None:
    """New priorities [K, B] of `batches` back to the table."""
    if self._update_priorities is not None:
      keys = np.concatenate([b.keys for b in batches])
      self._update_priorities(keys, np.asarray(priorities).reshape(-1))

  def get_variables(self) -> Any:
    """What actors act with: the online parameters (with the Haiku state when the networks have one)."""
    if self._variables_with_state:
      return {"params": self._state.params, "state": self._state.net_state}
    return self._state.params
