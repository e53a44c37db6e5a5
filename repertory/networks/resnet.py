"""The IMPALA deep ResNet encoder (Espeholt et al. 2018, arXiv 1802.01561, Fig. 3 right).

Three sections of (Conv 3x3 → max-pool 3x3 / 2 → two residual blocks [ReLU → Conv 3x3 → ReLU → Conv 3x3,
plus the input]) with 16, 32 and 32 channels, then ReLU → flatten → Linear 256 → ReLU. SAME padding, input /255.
"""

from typing import Sequence

import haiku as hk
import jax
import jax.numpy as jnp

SECTION_CHANNELS = (16, 32, 32)  # arXiv 1802.01561 Fig. 3
BLOCKS_PER_SECTION = 2
OUTPUT_SIZE = 256


class ResidualBlock(hk.Module):
  def __init__(self, channels: int, name: str):
    super().__init__(name=name)
    self._channels = channels

  def __call__(self, x: jax.Array) -> jax.Array:
    y = hk.Conv2D(self._channels, 3, padding="SAME", name="conv_0")(jax.nn.relu(x))
    y = hk.Conv2D(self._channels, 3, padding="SAME", name="conv_1")(jax.nn.relu(y))
    return x + y


class ImpalaResNet(hk.Module):
  """uint8 images [B, H, W, C] → features [B, 256]."""

  def __init__(self, channels: Sequence[int] = SECTION_CHANNELS, output_size: int = OUTPUT_SIZE,
               name: str = "impala_resnet"):
    super().__init__(name=name)
    self._channels = tuple(channels)
    self._output_size = output_size

  def __call__(self, images: jax.Array, is_training: bool = False) -> jax.Array:
    del is_training
    x = images.astype(jnp.float32) / 255.0
    for i, channels in enumerate(self._channels):
      x = hk.Conv2D(channels, 3, padding="SAME", name=f"section_{i}_conv")(x)
      x = hk.max_pool(x, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding="SAME")
      for j in range(BLOCKS_PER_SECTION):
        x = ResidualBlock(channels, name=f"section_{i}_block_{j}")(x)
    x = hk.Flatten()(jax.nn.relu(x))
    return jax.nn.relu(hk.Linear(self._output_size, name="linear")(x))
