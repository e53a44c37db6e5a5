"""DER networks: an encoder from `networks.encoders` and a dueling C51 head with noisy layers.

All variants are built with `hk.transform_with_state` (the S-RYM spectral-norm statistics are Haiku
state; the others have empty state) and take an rng (noisy layers, A-LIX shifts):

    logits, state = network.apply(params, state, rng, observations, is_training, noisy)   # [B, A, N]

* "der": the DER torso (`torsos.DataEfficientCNN`, arXiv 1906.05243 App. F) → dueling C51 head of `NoisyLinear` layers
  (Wang et al. 2016 eq. 9 applied to the atom logits, as Dopamine's FullRainbowNetwork). With a sparse
  `layer_kind` (powerprop, topkast) the torso's convolutions are that kind; the noisy head stays dense.
* "alix": `ALIXEncoder(architecture="der")` (arXiv 2207.00986): LIX after each conv ReLU in training,
  identity otherwise, the 3×3 second map shifted by S / 5 (same input distance as the first map, see
  `alix_encoder.layer_shift_scales`); S is trained by its own optimiser (`alix_optimizer.make_alix_optimizer`)
  → same head.
* "alix-atari": A-LIX as the paper ran it on Atari 100k (arXiv 2207.00986, Table 7: 3 convs of 32 3×3, strides 2, 1, 1,
  one LIX layer after the last, DrQ-v2's trunk of 50 features) → same head; `DERConfig.PRESETS["alix-paper"]`.
* "hyperbolic": `SpectralNormConvEncoder` + `SRYMHead` (S-RYM, arXiv 2210.01542): spectrally-normalised DER
  torso and hidden layer, then the Poincaré MLR producing A×N logits (any encoder with `hyperbolic_head`). It has no noisy or dueling layers (every
  layer before the hyperbolic one is spectrally normalised), so it explores ε-greedily (builder).
"""

import dataclasses

import haiku as hk
import jax
import jax.numpy as jnp

from repertory.agents.der.config import DERConfig
from repertory.environments.specs import EnvironmentSpec
from repertory.errors import ConfigError
from repertory.networks import torsos
from repertory.networks.encoders import Encoder, get_encoder
from repertory.networks.noisy import NoisyLinear
from repertory.plasticity.injection import InjectableHead


@dataclasses.dataclass(frozen=True)
class DERNetworks:
  network: hk.TransformedWithState  # (observations [B, ...], is_training, noisy) → logits [B, A, N]
  num_actions: int
  atoms: jax.Array  # [N] support of the return distribution
  has_noise: bool  # False: no noisy layers, exploration is ε-greedy
  encoder: Encoder  # what the learner must do for the encoder (optimiser, metrics, augmentation)


class DuelingCategoricalHead(hk.Module):
  """Dueling C51 logits: value [B, 1, N] + advantage [B, A, N] − mean_a advantage, noisy layers throughout."""

  def __init__(self, num_actions: int, num_atoms: int, hidden_size: int, sigma_zero: float,
               name: str = "dueling_categorical_head", layer_norm: bool = False):
    super().__init__(name=name)
    self._layer_norm = layer_norm
    self._num_actions, self._num_atoms = num_actions, num_atoms
    self._hidden, self._sigma = hidden_size, sigma_zero

  def __call__(self, features: jax.Array, noisy: bool) -> jax.Array:
    def stream(outputs: int, name: str) -> jax.Array:
      h = NoisyLinear(self._hidden, self._sigma, name=f"{name}_hidden")(features, noisy)
      if self._layer_norm:  # before the non-linearity (Lyle et al. 2023, arXiv 2303.01486)
        h = hk.LayerNorm(-1, create_scale=True, create_offset=True, name=f"{name}_layer_norm")(h)
      h = jax.nn.relu(h)
      return NoisyLinear(outputs, self._sigma, name=f"{name}_output")(h, noisy)

    value = stream(self._num_atoms, "value").reshape(-1, 1, self._num_atoms)
    advantage = stream(self._num_actions * self._num_atoms, "advantage").reshape(-1, self._num_actions, self._num_atoms)
    return value + advantage - jnp.mean(advantage, axis=1, keepdims=True)


def make_networks(spec: EnvironmentSpec, config: DERConfig) -> DERNetworks:
  num_actions = int(spec.actions.num_values)
  if not torsos.is_image(spec.observations.shape):
    raise ConfigError("the der agent needs image observations [H, W, C] (e.g. atari:Pong); use dqn for vector observations")
  atoms = jnp.linspace(-config.v_max, config.v_max, config.num_atoms)

  encoder = get_encoder(config.encoder)
  encoder.check_layer_kind(config.layer_kind)  # sparse convolutions in the torso; the noisy head stays dense
  if config.injection_step and encoder.hyperbolic_head:
    raise ConfigError(f"injection_step is not available with the {config.encoder} encoder's hyperbolic head "
                      "(its spectral-norm state is not copied at injection); use injection_step=0 or another encoder")

  def forward(observations: jax.Array, is_training: bool, noisy: bool) -> jax.Array:
    features = encoder.make(config.encoder_layers, config.layer_kind)(observations, is_training)
    if encoder.hyperbolic_head:
      from repertory.networks.hyperbolic import SRYMHead
      logits = SRYMHead(num_actions * config.num_atoms)(features, is_training)
      return logits.reshape(-1, num_actions, config.num_atoms)
    def make_head(name: str = "dueling_categorical_head") -> DuelingCategoricalHead:
      return DuelingCategoricalHead(num_actions, config.num_atoms, config.hidden_size, config.noisy_sigma_zero, name,
                                    config.layer_norm)

    head = InjectableHead(make_head) if config.injection_step else make_head()
    return head(features, noisy)

  return DERNetworks(network=hk.transform_with_state(forward), num_actions=num_actions, atoms=atoms,
                     has_noise=not encoder.hyperbolic_head, encoder=encoder)


def q_values(logits: jax.Array, atoms: jax.Array) -> jax.Array:
  """Expected returns Σ_i p_i z_i from logits [..., A, N]."""
  return jnp.sum(jax.nn.softmax(logits, axis=-1) * atoms, axis=-1)
