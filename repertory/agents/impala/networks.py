"""IMPALA networks: torso → recurrent core → policy and value heads (arXiv 1802.01561, Sec. 5 / Fig. 3).

  * torso: an MLP for vector observations; for images a small convolutional stack below 32 pixels
    (MiniGrid's 7×7 egocentric view: 2×2 convolutions as in the MiniGrid baselines,
    lcswillems/rl-starter-files) and DQN's Nature CNN otherwise;
  * core: `repertory.networks.cores.make_core(config.core)` (lstm | gtrxl | ppr | lru | none);
    acting calls `core(x, state, reset)` one step at a time, learning `core.unroll(xs, state, resets)`;
  * heads: linear policy logits and a linear value (with `injection_step`, both inside one
    `plasticity.injection.InjectableHead`, Nikishin et al. 2023, arXiv 2305.15555, eq. 1). A PPR core returns
    `PPROutput(reaction, prediction, perception)`: one shared policy head gives each part's logits,
    the reaction part gives the behaviour policy and the value (Stooke et al., arXiv 2006.15223);
  * optional default policy π0 (Galashov et al., arXiv 1905.01240) on a restricted view of the
    observation, with no memory: `default_policy_view` = "observation" (the current observation
    only), "none" (a learned state-independent distribution) or "slice:START:STOP" (that slice of the
    flattened observation).
"""

import dataclasses
from typing import Any, Callable, Dict, NamedTuple, Optional

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from repertory.agents.impala.config import IMPALAConfig, parse_slice
from repertory.environments.specs import EnvironmentSpec
from repertory.errors import ConfigError
from repertory.networks import torsos
from repertory.networks.mlp import make_mlp
from repertory.plasticity.injection import InjectableHead


class UnrollOutput(NamedTuple):
  logits: jax.Array  # [T, B, A] behaviour-policy (reaction) logits
  values: jax.Array  # [T, B]
  core_logits: Optional[Dict[str, jax.Array]]  # PPR: part name → [T, B, A]; else None
  default_logits: Optional[jax.Array]  # [T, B, A] when a default policy is configured


class SmallImageTorso(hk.Module):
  """Convolutions for small symbolic images (MiniGrid: 16-2×2, max-pool 2×2, 32-2×2, 64-2×2, then a
  linear layer; lcswillems/rl-starter-files). Object / colour / state indices are fed unscaled."""

  def __init__(self, output_size: int, name: str = "small_image_torso"):
    super().__init__(name=name)
    self._output_size = output_size

  def __call__(self, images: jax.Array) -> jax.Array:
    x = images.astype(jnp.float32)
    x = jax.nn.relu(hk.Conv2D(16, 2, padding="VALID")(x))
    x = hk.max_pool(x, 2, 2, padding="VALID") if min(x.shape[-3:-1]) >= 4 else x
    x = jax.nn.relu(hk.Conv2D(32, 2, padding="VALID")(x))
    x = jax.nn.relu(hk.Conv2D(64, 2, padding="VALID")(x))
    return jax.nn.relu(hk.Linear(self._output_size)(hk.Flatten()(x)))


def make_torso(observation_shape, config: IMPALAConfig, name: str) -> hk.Module:
  if torsos.is_image(observation_shape):
    if min(observation_shape[:2]) < 32:
      return SmallImageTorso(config.core_size, name=f"{name}_small_image")
    return torsos.NatureCNN(name=f"{name}_nature_cnn", layer_kind=config.layer_kind)
  return torsos.MLPTorso(config.hidden_sizes, name=f"{name}_mlp", layer_norm=config.layer_norm,
                         layer_kind=config.layer_kind)


def make_core(config: IMPALAConfig) -> Any:
  """The configured core; unknown names raise ConfigError from `make_core`."""
  from repertory.networks.cores import make_core as make
  return make(config.core, **core_kwargs(config))


def core_kwargs(config: IMPALAConfig) -> Dict[str, Any]:
  return {"hidden_size": config.core_size}


def _is_ppr(output: Any) -> bool:
  return hasattr(output, "reaction") and hasattr(output, "prediction") and hasattr(output, "perception")


class DefaultPolicy(hk.Module):
  """π0(·|x^D): a memoryless policy on a restricted view of the observation (arXiv 1905.01240)."""

  def __init__(self, num_actions: int, observation_shape, config: IMPALAConfig, name: str = "default_policy"):
    super().__init__(name=name)
    self._num_actions = num_actions
    self._view = config.default_policy_view
    self._shape = tuple(observation_shape)
    self._config = config

  def __call__(self, observations: jax.Array) -> jax.Array:
    """observations [N, ...] → logits [N, A]."""
    n = observations.shape[0]
    if self._view == "none":
      logits = hk.get_parameter("logits", [self._num_actions], init=jnp.zeros)
      return jnp.broadcast_to(logits, (n, self._num_actions))
    if self._view == "observation":
      features = make_torso(self._shape, self._config, "default")(observations)
    else:
      flat = observations.reshape(n, -1).astype(jnp.float32)[:, parse_slice(self._view)]
      features = make_mlp(self._config.hidden_sizes, self._config.layer_norm, activate_final=True,
                          layer_kind=self._config.layer_kind)(flat)
    return hk.Linear(self._num_actions, name="logits")(features)


class PolicyValueHeads(hk.Module):
  """x [..., D] → (policy logits [..., A], value [...]): the two linear heads as one module, to inject into."""

  def __init__(self, num_actions: int, name: str = "policy_value_heads"):
    super().__init__(name=name)
    self._num_actions = num_actions

  def __call__(self, x: jax.Array):
    return hk.Linear(self._num_actions, name="policy_head")(x), hk.Linear(1, name="value_head")(x)[..., 0]


class IMPALANetwork(hk.Module):
  def __init__(self, num_actions: int, observation_shape, config: IMPALAConfig, name: str = "impala_network"):
    super().__init__(name=name)
    self._num_actions = num_actions
    self._torso = make_torso(observation_shape, config, "torso")
    self._core = make_core(config)
    if config.injection_step:
      self._injectable_heads = InjectableHead(lambda name: PolicyValueHeads(num_actions, name=name))
    else:  # the heads' parameters named as before injection existed (older checkpoints, teachers)
      policy_head, value_head = hk.Linear(num_actions, name="policy_head"), hk.Linear(1, name="value_head")
      self._injectable_heads = lambda x: (policy_head(x), value_head(x)[..., 0])
    self._default = (DefaultPolicy(num_actions, observation_shape, config)
                     if config.default_policy_kl_weight > 0 else None)

  def initial_state(self, batch_size: int) -> Any:
    return self._core.initial_state(batch_size)

  @property
  def core_module(self) -> str:
    return self._core.module_name

  def _heads(self, output: Any):
    if _is_ppr(output):  # the parts side by side through one call of the heads
      parts = ("reaction", "prediction", "perception")
      logits, values = self._injectable_heads(jnp.stack([getattr(output, k) for k in parts]))
      core_logits = {k: logits[i] for i, k in enumerate(parts)}
      return core_logits["reaction"], values[0], core_logits
    logits, values = self._injectable_heads(output)
    return logits, values, None

  def step(self, observations: jax.Array, state: Any, reset: jax.Array):
    """One acting step: observations [B, ...], reset [B] → (logits [B, A], value [B], new state)."""
    features = self._torso(observations)
    output, state = self._core(features, state, reset)
    logits, value, _ = self._heads(output)
    return logits, value, state

  def unroll(self, observations: jax.Array, state: Any, resets: jax.Array) -> UnrollOutput:
    """Learning: observations [T, B, ...], resets [T, B] → `UnrollOutput` of [T, B, ...] arrays."""
    features = hk.BatchApply(self._torso)(observations)
    outputs, _ = self._core.unroll(features, state, resets)
    logits, values, core_logits = self._heads(outputs)
    default_logits = hk.BatchApply(self._default)(observations) if self._default is not None else None
    return UnrollOutput(logits, values, core_logits, default_logits)


@dataclasses.dataclass(frozen=True)
class IMPALANetworks:
  """Pure functions of the parameters (haiku multi_transform, no rng)."""

  init: Callable[[jax.Array], Any]  # key → params
  initial_state: Callable[[Any, int], Any]  # (params, batch) → core state
  step: Callable[..., Any]  # (params, observations [B, ...], state, reset [B]) → (logits, value, state)
  unroll: Callable[..., UnrollOutput]  # (params, observations [T, B, ...], state, resets [T, B])
  num_actions: int
  example_observation: np.ndarray
  core_module: str = ""  # the Haiku module name of the core: its layers' names start with it


def make_networks(spec: EnvironmentSpec, config: IMPALAConfig) -> IMPALANetworks:
  if not hasattr(spec.actions, "num_values"):
    raise ConfigError("the impala agent needs discrete actions (a DiscreteArray action spec)")
  num_actions = int(spec.actions.num_values)
  example = np.asarray(spec.observations.generate_value())
  shape = example.shape

  def forward():
    network = IMPALANetwork(num_actions, shape, config)

    def init(observations):  # [T=1, B=1, ...]
      return network.unroll(observations, network.initial_state(1), jnp.ones(observations.shape[:2], bool))

    return init, (network.initial_state, network.step, network.unroll, lambda: network.core_module)

  transformed = hk.without_apply_rng(hk.multi_transform(forward))
  initial_state, step, unroll, core_module = transformed.apply
  return IMPALANetworks(
      init=lambda key: transformed.init(key, jnp.asarray(example)[None, None]),
      initial_state=initial_state, step=step, unroll=unroll, num_actions=num_actions,
      example_observation=example, core_module=core_module({}))
