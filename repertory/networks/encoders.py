"""Image encoders behind one interface, by name (as `cores.make_core` does for recurrent cores).

    encoder = get_encoder("alix")
    features = encoder.build("der")(images, is_training)     # inside hk.transform(_with_state)
    optimizer = encoder.wrap_optimizer(optax.adam(1e-4))      # extra optimiser parts the encoder needs
    metrics = encoder.metrics(params)                         # what it logs

Every module takes uint8 images [B, H, W, C] and `is_training`, and returns flat features [B, D].
An entry says what an agent must do for it, so no agent compares encoder names:
  random_in_training  the module draws from `hk.next_rng_key()` when training (give apply an rng);
  has_state           it keeps Haiku state (build with `hk.transform_with_state`);
  augment             learners apply it to training observations: augment(key, images, pad);
  wrap_optimizer      wraps the agent's optimiser (A-LIX: S gets its own Adam and a clip);
  metrics             params → scalars to log;
  hyperbolic_head     the features feed S-RYM's hyperbolic head in place of the agent's own head;
  sparse_layers       its convolutions can be `networks.sparse` kinds (`make(layers, layer_kind)`).
`layers` names the `conv.LAYERS` stack of the encoders that can take several (alix, hyperbolic); None takes
the encoder's own; the others have one architecture and ignore it. Adding an encoder is one module plus one `register` call here.
"""

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

from repertory.errors import ConfigError


def _no_metrics(params: Any) -> Dict[str, Any]:
  del params
  return {}


def _identity(optimizer):
  return optimizer


@dataclasses.dataclass(frozen=True)
class Encoder:
  name: str
  build: Callable[[Optional[str]], Any]  # layers → Haiku module (call inside a transform)
  source: str
  random_in_training: bool = False
  has_state: bool = False
  augment: Optional[Callable[[Any, Any, int], Any]] = None
  wrap_optimizer: Callable[[Any], Any] = _identity
  metrics: Callable[[Any], Dict[str, Any]] = _no_metrics
  hyperbolic_head: bool = False
  layer_stacks: Tuple[str, ...] = ()  # the `conv.LAYERS` stacks it can be built on; () = one architecture
  sparse_layers: bool = False  # build takes `layer_kind` (dense, powerprop, topkast) for its convolutions

  def check_layer_kind(self, layer_kind: str) -> None:
    """One line for a sparse `layer_kind` this encoder's convolutions cannot be."""
    if layer_kind != "dense" and not self.sparse_layers:
      takes = ", ".join(n for n, e in _ENCODERS.items() if e.sparse_layers)
      raise ConfigError(f"layer_kind={layer_kind} is not available for the {self.name} encoder (sparse "
                        f"convolutions: {takes}); use layer_kind=dense or one of those encoders")

  def make(self, layers: Optional[str], layer_kind: str = "dense") -> Any:
    """The Haiku module on `layers` with `layer_kind` convolutions (call inside a transform)."""
    self.check_layer_kind(layer_kind)
    return self.build(layers) if layer_kind == "dense" else self.build(layers, layer_kind=layer_kind)


_ENCODERS: Dict[str, Encoder] = {}


def register(encoder: Encoder) -> None:
  _ENCODERS[encoder.name] = encoder


def encoder_names() -> tuple:
  return tuple(_ENCODERS)


def check_encoder(name: str) -> None:
  """ConfigError unless `name` is a registered encoder; imports nothing heavy."""
  if name not in _ENCODERS:
    raise ConfigError(f"unknown encoder '{name}'; choose one of {', '.join(encoder_names())}")


# The names of `conv.LAYERS` (kept here so that checking a config imports no Haiku; a test compares them).
LAYER_STACKS = ("der", "nature", "drqv2", "alix_atari")


def check_encoder_layers(name: str, layers: str, default: str) -> None:
  """ConfigError unless encoder `name` can be built on the `conv.LAYERS` stack `layers`; an encoder of one
  architecture takes only the agent's `default` (which it ignores)."""
  check_encoder(name)
  stacks = _ENCODERS[name].layer_stacks
  if not stacks and layers != default:
    several = ", ".join(n for n, e in _ENCODERS.items() if e.layer_stacks)
    raise ConfigError(f"encoder_layers='{layers}' is not available for the {name} encoder (it has one architecture; "
                      f"encoder_layers applies to {several}); use encoder_layers={default}")
  if stacks and layers not in stacks:
    raise ConfigError(f"encoder_layers='{layers}' is unknown; use one of {', '.join(stacks)}")


def get_encoder(name: str) -> Encoder:
  check_encoder(name)
  return _ENCODERS[name]


def _der(layers, layer_kind="dense"):
  del layers
  from repertory.networks.torsos import DataEfficientCNN
  return DataEfficientCNN(layer_kind=layer_kind)


def _nature(layers, layer_kind="dense"):
  del layers
  from repertory.networks.torsos import NatureCNN
  return NatureCNN(layer_kind=layer_kind)


def _drq(layers):
  del layers
  from repertory.networks.torsos import DrQv2CNN
  return DrQv2CNN()


def _impala_resnet(layers):
  del layers
  from repertory.networks.resnet import ImpalaResNet
  return ImpalaResNet()


def _alix(layers):
  from repertory.networks.alix import ALIXConfig
  from repertory.networks.alix_encoder import ALIXEncoder
  return ALIXEncoder(ALIXConfig(architecture=layers or "drqv2"))


def _alix_atari(layers):
  del layers
  from repertory.networks.alix import ATARI_100K
  from repertory.networks.alix_encoder import ALIXEncoder
  return ALIXEncoder(ATARI_100K)


def _alix_optimizer(optimizer):
  from repertory.networks.alix_optimizer import make_alix_optimizer
  return make_alix_optimizer(optimizer)  # global-norm clipping stays inside `optimizer`, as A-LIX asks


def _alix_atari_optimizer(optimizer):
  from repertory.networks.alix_optimizer import ATARI_SHIFT_LEARNING_RATE, make_alix_optimizer
  return make_alix_optimizer(optimizer, shift_learning_rate=ATARI_SHIFT_LEARNING_RATE)


def _alix_metrics(params):
  from repertory.networks.alix_optimizer import alix_shift
  shift = alix_shift(params)
  return {} if shift is None else {"alix_shift": shift}


def _hyperbolic(layers):
  from repertory.networks.hyperbolic import SpectralNormConvEncoder
  return SpectralNormConvEncoder(layers or "der")


def _random_shift(key, images, pad):
  from repertory.networks.augmentation import random_shift
  return random_shift(key, images, pad)


register(Encoder("der", _der, "data-efficient Rainbow CNN, van Hasselt et al. 2019, arXiv 1906.05243, App. F",
                 sparse_layers=True))
register(Encoder("nature", _nature, "DQN's CNN + Linear 512, Mnih et al. 2015, Nature, Methods", sparse_layers=True))
register(Encoder("impala-resnet", _impala_resnet, "IMPALA deep ResNet, Espeholt et al. 2018, arXiv 1802.01561, Fig. 3"))
register(Encoder("drq", _drq, "DrQ-v2 CNN with random-shift augmentation, Yarats et al. 2021, arXiv 2107.09645",
                 augment=_random_shift))
register(Encoder("alix", _alix, "A-LIX adaptive local signal mixing, Cetin et al. 2022, arXiv 2207.00986",
                 random_in_training=True, wrap_optimizer=_alix_optimizer, metrics=_alix_metrics, layer_stacks=LAYER_STACKS))
register(Encoder("alix-atari", _alix_atari, "A-LIX as run on Atari 100k (3-conv stack, LIX after the last conv, "
                 "trunk of 50, S from 1 px at lr 1e-4, ND target 0.75), Cetin et al. 2022, arXiv 2207.00986, Table 7",
                 random_in_training=True, wrap_optimizer=_alix_atari_optimizer, metrics=_alix_metrics))
register(Encoder("hyperbolic", _hyperbolic, "S-RYM spectrally-normalised CNN + hyperbolic head, Cetin et al. 2023, "
                 "arXiv 2210.01542", has_state=True, hyperbolic_head=True, layer_stacks=LAYER_STACKS))
