"""The A-LIX encoder: a conv stack with LIX layers sharing one adaptive shift S (arXiv 2207.00986, Sec. 4.3).

The layer pieces (LIX, the normalised discontinuity, the custom VJP that tunes S) are in `alix.py`; S's own
optimiser is in `alix_optimizer.py`.
"""

from typing import Optional

import haiku as hk
import jax
import jax.numpy as jnp

from repertory.networks.alix import (INITIAL_SHIFT, SHIFT_MODULE_NAME, SHIFT_PARAM_NAME, ALIXConfig,
                                     LocalSignalMixing, learn_shift)
from repertory.networks.conv import LAYERS, Conv2DValid

# Stacks built as DrQ-v2's encoder: input /255 − 0.5, orthogonal init with ReLU gain (authors' `utils.weight_init`).
DRQV2_FAMILY = ("drqv2", "alix_atari")


class ALIXShift(hk.Module):
  """Holds the shared A-LIX magnitude S (pixels) as parameter `alix_shift/shift`."""

  def __init__(self, initial_shift: float = INITIAL_SHIFT, name: str = SHIFT_MODULE_NAME):
    super().__init__(name=name)
    self._initial_shift = initial_shift

  def __call__(self) -> jax.Array:
    return hk.get_parameter(SHIFT_PARAM_NAME, (), jnp.float32, init=hk.initializers.Constant(self._initial_shift))


def layer_shift_scales(strides) -> tuple:
  """Factor applied to S at each LIX layer: stride₀ / (cumulative stride up to that layer)."""
  scales, cumulative = [], 1
  for stride in strides:
    cumulative *= stride
    scales.append(strides[0] / cumulative)
  return tuple(scales)


class ALIXEncoder(hk.Module):
  """Conv encoder with LIX layers after its conv ReLUs sharing one adaptive S (arXiv 2207.00986).

  Input uint8 images [B, H, W, C] (divided by 255; the DrQ-v2 stacks also subtract 0.5). Output flat features
  [B, D] (or [B, trunk_features] through DrQ-v2's trunk). A LIX layer follows every conv ReLU, or only the
  last with `lix_after="last"`. Training needs an rng (`hk.next_rng_key`); evaluation (`is_training=False`)
  is deterministic and identical to the plain CNN with the same weights. S's ND signal comes from the last
  LIX layer (authors' `AllFeatTiedRegularizedEncoder`) unless `config.learn_from_all_layers`.
  """

  def __init__(self, config: ALIXConfig = ALIXConfig(), name: str = "alix_encoder"):
    super().__init__(name=name)
    self._config = config

  def __call__(self, images: jax.Array, is_training: bool) -> jax.Array:
    cfg = self._config
    if images.ndim != 4:
      raise ValueError(f"ALIXEncoder expects images [B, H, W, C], got shape {images.shape}.")
    x = images.astype(jnp.float32) / 255.0
    if cfg.architecture in DRQV2_FAMILY:
      x = x - 0.5
      w_init: Optional[hk.initializers.Initializer] = hk.initializers.Orthogonal(scale=jnp.sqrt(2.0))
      b_init: Optional[hk.initializers.Initializer] = jnp.zeros
    else:
      w_init, b_init = None, None
    shift = ALIXShift(cfg.initial_shift)()
    specs = LAYERS[cfg.architecture]
    scales = layer_shift_scales([stride for _, _, stride in specs])
    for layer, ((channels, kernel, stride), scale) in enumerate(zip(specs, scales)):
      x = Conv2DValid(channels, kernel, stride, w_init=w_init, b_init=b_init, name=f"conv_{layer}")(x)
      x = jax.nn.relu(x)
      last = layer == len(specs) - 1
      if cfg.lix_after == "last" and not last:
        continue
      lix = LocalSignalMixing(cfg.max_shift * scale, cfg.per_example_shift, name=f"lix_{layer}")
      x = lix(x, shift * scale, is_training)
      if is_training and (cfg.learn_from_all_layers or last):
        x = learn_shift(x, shift, cfg.nd_target, cfg.nd_eps)
    x = hk.Flatten()(x)
    if cfg.trunk_features:  # DrQ-v2's trunk (arXiv 2107.09645, `Critic.trunk`): orthogonal Linear, LayerNorm, tanh
      x = hk.Linear(cfg.trunk_features, w_init=hk.initializers.Orthogonal(), name="trunk_linear")(x)
      x = jnp.tanh(hk.LayerNorm(axis=-1, create_scale=True, create_offset=True, name="trunk_layer_norm")(x))
    return x
