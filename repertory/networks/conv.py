"""The one convolution of the project's image encoders, and the layer stacks they use.

Every encoder (DER, Nature DQN, A-LIX, S-RYM) convolves with `Conv2DValid` (or, spectrally normalised,
with `conv2d_valid`) over one of the `LAYERS` stacks, so each stack is written once.
"""

from typing import Dict, Optional, Sequence, Tuple

import haiku as hk
import jax
import jax.numpy as jnp

LayerSpec = Tuple[int, int, int]  # (output channels, kernel size, stride)

LAYERS: Dict[str, Tuple[LayerSpec, ...]] = {
    # Data-efficient Rainbow, van Hasselt et al. 2019, arXiv 1906.05243, Appendix F: 32-5x5/5, 64-5x5/5.
    "der": ((32, 5, 5), (64, 5, 5)),
    # DQN, Mnih et al. 2015, Nature, Methods: 32-8x8/4, 64-4x4/2, 64-3x3/1.
    "nature": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),
    # DrQ-v2, Yarats et al. 2021, arXiv 2107.09645: 4 convs of 32 channels 3x3, the first with stride 2.
    "drqv2": ((32, 3, 2), (32, 3, 1), (32, 3, 1), (32, 3, 1)),
    # A-LIX on Atari 100k, Cetin et al. 2022, arXiv 2207.00986, Table 7: 3 convs of 32 channels 3x3, strides 2, 1, 1.
    "alix_atari": ((32, 3, 2), (32, 3, 1), (32, 3, 1)),
}


def conv2d_valid(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
  """NHWC/HWIO convolution with VALID padding.

  When the kernel equals the stride (the DER torso: 5x5/5) the patches do not overlap and the
  convolution is computed exactly as patchify + matmul. Besides being cheap, this avoids an XLA:CPU
  abort in jaxlib 0.4.34 ("convolution_thunk_internal.h:123 Check failed: use_thread_pool ==
  static_cast<bool>(done_callback)") raised by the input-gradient of kernel == stride convolutions
  when XLA runs with `--xla_cpu_use_thunk_runtime=false`.
  """
  kh, kw = w.shape[:2]
  if kh == kw == stride:
    batch_shape, (height, width, channels) = x.shape[:-3], x.shape[-3:]
    oh, ow = height // kh, width // kw
    x = x[..., :oh * kh, :ow * kw, :].reshape(batch_shape + (oh, kh, ow, kw, channels))
    return jnp.einsum("...hpwqc,pqco->...hwo", x, w)
  return jax.lax.conv_general_dilated(x, w, (stride, stride), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


class Conv2DValid(hk.Module):
  """`hk.Conv2D(channels, kernel, stride, padding="VALID")` with the same parameters (`w`
  [k, k, in, out], `b`) and default initialisers, computed by `conv2d_valid`."""

  def __init__(self, output_channels: int, kernel_size: int, stride: int,
               w_init: Optional[hk.initializers.Initializer] = None,
               b_init: Optional[hk.initializers.Initializer] = None, name: Optional[str] = None):
    super().__init__(name=name)
    self._channels = output_channels
    self._kernel = kernel_size
    self._stride = stride
    self._w_init = w_init
    self._b_init = b_init or jnp.zeros

  def __call__(self, x: jax.Array) -> jax.Array:
    w_init = self._w_init or hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")
    w = hk.get_parameter("w", (self._kernel, self._kernel, x.shape[-1], self._channels), x.dtype, init=w_init)
    b = hk.get_parameter("b", (self._channels,), x.dtype, init=self._b_init)
    return conv2d_valid(x, w, self._stride) + b


class ConvReLUStack(hk.Module):
  """Conv2DValid → ReLU for each layer of a stack, then flatten: float images [B, H, W, C] → [B, D].

  The layers are named `conv_0`, `conv_1`, … inside the module; with a sparse `layer_kind` (powerprop, topkast:
  `repertory.networks.sparse`) they are that kind's convolutions, named `<kind>_conv_0`, …"""

  def __init__(self, layers: Sequence[LayerSpec], w_init: Optional[hk.initializers.Initializer] = None,
               name: Optional[str] = None, layer_kind: str = "dense"):
    super().__init__(name=name)
    self._layers = tuple(layers)
    self._w_init = w_init
    self._layer_kind = layer_kind

  def __call__(self, x: jax.Array) -> jax.Array:
    for i, (channels, kernel, stride) in enumerate(self._layers):
      x = jax.nn.relu(_make_conv(self._layer_kind, i, channels, kernel, stride, self._w_init)(x))
    return hk.Flatten()(x)


def _make_conv(kind: str, i: int, channels: int, kernel: int, stride: int,
               w_init: Optional[hk.initializers.Initializer]) -> hk.Module:
  """Layer i of a stack (a function, not a method, so that Haiku names it `<stack>/conv_i`)."""
  if kind == "dense":
    return Conv2DValid(channels, kernel, stride, w_init=w_init, name=f"conv_{i}")
  from repertory.networks.sparse import make_conv  # sparse's layers build on this module's Conv2DValid
  return make_conv(kind, channels, kernel, stride, w_init=w_init, name=f"{kind}_conv_{i}")
