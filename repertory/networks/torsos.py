"""Observation torsos: MLP for vectors, convolutional stacks for images.

Images arrive as uint8 [B, H, W, C] and are scaled to [0, 1] here.
"""

from typing import Sequence

import haiku as hk
import jax
import jax.numpy as jnp

from repertory.networks.conv import LAYERS, ConvReLUStack
from repertory.networks.mlp import make_mlp
from repertory.networks.sparse import make_linear


def _scale_image(images: jax.Array) -> jax.Array:
  return images.astype(jnp.float32) / 255.0


class MLPTorso(hk.Module):
  """A ReLU MLP over flattened observations (with `layer_norm`, LayerNorm before each ReLU)."""

  def __init__(self, hidden_sizes: Sequence[int] = (256, 256), name: str = "mlp_torso", layer_norm: bool = False,
               layer_kind: str = "dense"):
    super().__init__(name=name)
    self._hidden_sizes = tuple(hidden_sizes)
    self._layer_norm, self._layer_kind = layer_norm, layer_kind

  def __call__(self, observations: jax.Array) -> jax.Array:
    x = hk.Flatten()(observations.astype(jnp.float32))
    return make_mlp(self._hidden_sizes, self._layer_norm, activate_final=True, name="mlp", layer_kind=self._layer_kind)(x)


class NatureCNN(ConvReLUStack):
  """DQN's convolutional torso (Mnih et al. 2015, Nature, Methods: 32-8x8/4, 64-4x4/2, 64-3x3/1, 512); a sparse
  `layer_kind` makes its convolutions and its linear layer (`<kind>_linear_0`) that kind."""

  def __init__(self, name: str = "nature_cnn", layer_kind: str = "dense"):
    super().__init__(LAYERS["nature"], name=name, layer_kind=layer_kind)

  def __call__(self, images: jax.Array, is_training: bool = False) -> jax.Array:
    del is_training
    features = super().__call__(_scale_image(images))
    if self._layer_kind == "dense":
      return jax.nn.relu(hk.Linear(512)(features))
    return jax.nn.relu(make_linear(self._layer_kind, 512, name=f"{self._layer_kind}_linear_0")(features))


class DataEfficientCNN(ConvReLUStack):
  """The data-efficient Rainbow torso (van Hasselt et al. 2019, arXiv 1906.05243, Appendix F: 32-5x5/5,
  64-5x5/5, ReLU, flatten; input /255). Its layers are `<name>/conv_0`, `<name>/conv_1`."""

  def __init__(self, name: str = "der_torso", layer_kind: str = "dense"):
    super().__init__(LAYERS["der"], name=name, layer_kind=layer_kind)

  def __call__(self, images: jax.Array, is_training: bool = False) -> jax.Array:
    del is_training
    return super().__call__(_scale_image(images))


class DrQv2CNN(ConvReLUStack):
  """The DrQ-v2 conv encoder (Yarats et al. 2021, arXiv 2107.09645: 4 convs of 32 channels 3x3, the first with
  stride 2; input /255 − 0.5; orthogonal init with ReLU gain as the authors' `utils.weight_init`)."""

  def __init__(self, name: str = "drqv2_cnn"):
    super().__init__(LAYERS["drqv2"], w_init=hk.initializers.Orthogonal(scale=jnp.sqrt(2.0)), name=name)

  def __call__(self, images: jax.Array, is_training: bool = False) -> jax.Array:
    del is_training
    return super().__call__(_scale_image(images) - 0.5)


def is_image(shape: Sequence[int]) -> bool:
  return len(shape) == 3
