"""SAC networks: an observation encoder, a tanh-Gaussian actor and an ensemble of N Q critics.

* States: the encoder flattens the observation; actor and critics are ReLU MLPs (2 × 256, SAC
  arXiv 1812.05905 Table 1); each critic sees concat(observation, action).
* Pixels ([H, W, C] uint8 observations): the encoder `config.encoder` of `networks.encoders` on the DrQ-v2
  conv stack (arXiv 2107.09645: 4 convs of 32 channels, 3x3, first stride 2) — "alix" mixes local signals
  (LIX, arXiv 2207.00986) after every conv ReLU in training; "drq" is the plain DrQ-v2 conv and the
  learner random-shifts the images (the encoder's `augment`). Actor and critic each put a DrQ-v2 trunk
  (Linear(feature_dim) → LayerNorm → tanh) before their MLPs. Only the critic trains the encoder:
  the learner hands the actor stop-gradient features.

Plasticity injection (`injection_step`, Nikishin et al. 2023, arXiv 2305.15555, eq. 1): the head of the actor
and of each critic — its last hidden layer and its outputs — sits in a `plasticity.injection.InjectableHead`
(`injectable_head_actor`, `injectable_head_q_<i>`); the hidden layers before it stay in `actor_mlp` / `q_<i>`.
Without injection the parameter names are those of the plain MLPs.

Actions: the actor's distribution lives on [−1, 1]^|A| (tanh-squashed Gaussian, arXiv 1812.05905
Appendix C); the actor rescales to the environment's bounds, and the learner maps stored actions back.
"""

import dataclasses

import distrax
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from repertory.agents.sac.config import SACConfig
from repertory.environments.specs import EnvironmentSpec
from repertory.networks import torsos
from repertory.networks.encoders import Encoder, get_encoder
from repertory.networks.mlp import make_mlp
from repertory.plasticity.injection import SCOPE, InjectableHead


@dataclasses.dataclass(frozen=True)
class SACNetworks:
  encoder: hk.Transformed  # apply(params, rng, observations [B, ...], is_training) → features [B, D]
  actor: hk.Transformed  # apply(params, None, features) → (mean [B, A], log_std [B, A])
  critic: hk.Transformed  # apply(params, None, features, actions in [−1, 1]) → Q [N, B]
  action_minimum: np.ndarray  # [A]
  action_maximum: np.ndarray  # [A]
  action_shape: tuple  # the environment's action shape
  image: bool
  config: SACConfig
  image_encoder: Encoder  # used for pixel observations: what the learner must do for it

  @property
  def action_dim(self) -> int:
    return int(self.action_minimum.shape[0])

  def to_environment_action(self, unit_action: jax.Array) -> jax.Array:
    """[−1, 1] → [minimum, maximum] (affine)."""
    half = (self.action_maximum - self.action_minimum) / 2.0
    return (unit_action + 1.0) * half + self.action_minimum

  def to_unit_action(self, action: jax.Array) -> jax.Array:
    """[minimum, maximum] → [−1, 1], the critic's action input."""
    half = (self.action_maximum - self.action_minimum) / 2.0
    return jnp.clip((action - self.action_minimum) / half - 1.0, -1.0, 1.0)


def tanh_gaussian(mean: jax.Array, log_std: jax.Array) -> distrax.Distribution:
  """π(·|s) = tanh(N(mean, diag(exp(log_std)²))), event shape [A] (arXiv 1812.05905, Appendix C):

  log π(a|s) = log N(u; mean, σ) − Σ_i log(1 − tanh(u_i)²),  a = tanh(u)
  (distrax's Tanh bijector computes the log-det as 2(log 2 − u − softplus(−2u)), stably).
  """
  base = distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))
  return distrax.Transformed(base, distrax.Block(distrax.Tanh(), ndims=1))


class DrQTrunk(hk.Module):
  """DrQ-v2 trunk: Linear(feature_dim) → LayerNorm → tanh (arXiv 2107.09645, Sec. 3.2 / code)."""

  def __init__(self, feature_dim: int, name: str = "drq_trunk"):
    super().__init__(name=name)
    self._feature_dim = feature_dim

  def __call__(self, features: jax.Array) -> jax.Array:
    x = hk.Linear(self._feature_dim)(features)
    return jnp.tanh(hk.LayerNorm(-1, create_scale=True, create_offset=True)(x))


class ActorHead(hk.Module):
  """The actor's injected head: one hidden layer (as the actor's MLP builds it), then the mean and log std."""

  def __init__(self, hidden: int, action_dim: int, config: SACConfig, name: str):
    super().__init__(name=name)
    self._hidden, self._action_dim, self._config = hidden, action_dim, config

  def __call__(self, x: jax.Array):
    x = make_mlp((self._hidden,), self._config.layer_norm, activate_final=True, layer_kind=self._config.layer_kind)(x)
    return hk.Linear(self._action_dim, name="mean")(x), hk.Linear(self._action_dim, name="log_std")(x)


def make_networks(spec: EnvironmentSpec, config: SACConfig) -> SACNetworks:
  action_spec = spec.actions
  action_dim = int(np.prod(action_spec.shape))
  minimum = np.broadcast_to(np.asarray(action_spec.minimum, np.float32), action_spec.shape).reshape(-1)
  maximum = np.broadcast_to(np.asarray(action_spec.maximum, np.float32), action_spec.shape).reshape(-1)
  image = torsos.is_image(spec.observations.shape)
  hidden = tuple(config.hidden_sizes)
  image_encoder = get_encoder(config.encoder)

  def encode(observations: jax.Array, is_training: bool) -> jax.Array:
    if not image:
      return hk.Flatten()(observations.astype(jnp.float32))
    return image_encoder.build("drqv2")(observations, is_training)

  def mlp(sizes, name, activate_final=False):
    return make_mlp(sizes, config.layer_norm, activate_final, name=name, layer_kind=config.layer_kind)

  injected = bool(config.injection_step)

  def actor(features: jax.Array):
    x = DrQTrunk(config.feature_dim, name="actor_trunk")(features) if image else features
    x = mlp(hidden[:-1] if injected else hidden, "actor_mlp", activate_final=True)(x)
    if injected:
      mean, log_std = InjectableHead(lambda name: ActorHead(hidden[-1], action_dim, config, name=name),
                                     name=f"{SCOPE}_actor")(x)
    else:
      mean, log_std = hk.Linear(action_dim, name="mean")(x), hk.Linear(action_dim, name="log_std")(x)
    return mean, jnp.clip(log_std, config.log_std_min, config.log_std_max)

  def q_value(x: jax.Array, i: int) -> jax.Array:
    if not injected:
      return mlp(hidden + (1,), f"q_{i}")(x)[..., 0]
    x = mlp(hidden[:-1], f"q_{i}", activate_final=True)(x)
    return InjectableHead(lambda name: mlp(hidden[-1:] + (1,), name), name=f"{SCOPE}_q_{i}")(x)[..., 0]

  def critic(features: jax.Array, actions: jax.Array) -> jax.Array:
    x = DrQTrunk(config.feature_dim, name="critic_trunk")(features) if image else features
    x = jnp.concatenate([x, actions.astype(jnp.float32)], axis=-1)
    return jnp.stack([q_value(x, i) for i in range(config.num_critics)])  # [N, B]

  return SACNetworks(encoder=hk.transform(encode), actor=hk.transform(actor), critic=hk.transform(critic),
                     action_minimum=minimum, action_maximum=maximum,
                     action_shape=tuple(action_spec.shape), image=image, config=config, image_encoder=image_encoder)
