"""DQN networks: a torso chosen by the observation (MLP for vectors, Nature CNN for images) and a Q head."""

import dataclasses

import haiku as hk
import jax

from repertory.agents.dqn.config import DQNConfig
from repertory.environments.specs import EnvironmentSpec
from repertory.networks import heads, torsos
from repertory.plasticity.injection import InjectableHead


@dataclasses.dataclass(frozen=True)
class DQNNetworks:
  q_network: hk.Transformed  # observations [B, ...] → Q-values [B, A]
  num_actions: int


def make_networks(spec: EnvironmentSpec, config: DQNConfig) -> DQNNetworks:
  num_actions = int(spec.actions.num_values)
  image = torsos.is_image(spec.observations.shape)

  def q_values(observations: jax.Array) -> jax.Array:
    torso = torsos.NatureCNN(layer_kind=config.layer_kind) if image else torsos.MLPTorso(config.hidden_sizes[:-1] or config.hidden_sizes, layer_norm=config.layer_norm,
                                                         layer_kind=config.layer_kind)
    head_hidden = config.hidden_sizes[-1:]
    head_class = heads.DuelingQHead if config.dueling else heads.QHead
    layers = dict(layer_norm=config.layer_norm, layer_kind=config.layer_kind)
    if config.injection_step:
      head = InjectableHead(lambda name: head_class(num_actions, head_hidden, name=name, **layers))
    else:
      head = head_class(num_actions, head_hidden, **layers)
    return head(torso(observations))

  return DQNNetworks(q_network=hk.without_apply_rng(hk.transform(q_values)), num_actions=num_actions)
