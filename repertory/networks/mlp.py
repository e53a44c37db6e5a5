"""The MLP every torso and head builds: `hk.nets.MLP`, or with layer normalisation before each non-linearity.

Layer normalisation keeps a network trainable on a changing sequence of tasks (Lyle et al. 2023,
"Understanding plasticity in neural networks", arXiv 2303.01486, where LayerNorm is placed before the
activation of each hidden layer). Without it, `make_mlp` is exactly `hk.nets.MLP` (same parameter names).
"""

from typing import Optional, Sequence

import haiku as hk
import jax


class LayerNormMLP(hk.Module):
  """Linear → LayerNorm → ReLU for each hidden layer, then a plain final Linear (or one more LN + ReLU when
  `activate_final`). Layers are `linear_<i>` and `layer_norm_<i>`, as `hk.nets.MLP` names its linears."""

  def __init__(self, output_sizes: Sequence[int], activate_final: bool = False, name: Optional[str] = None):
    super().__init__(name=name)
    self._sizes, self._activate_final = tuple(output_sizes), activate_final

  def __call__(self, x: jax.Array) -> jax.Array:
    for i, size in enumerate(self._sizes):
      x = hk.Linear(size, name=f"linear_{i}")(x)
      if i < len(self._sizes) - 1 or self._activate_final:
        x = jax.nn.relu(hk.LayerNorm(-1, create_scale=True, create_offset=True, name=f"layer_norm_{i}")(x))
    return x


def make_mlp(output_sizes: Sequence[int], layer_norm: bool = False, activate_final: bool = False,
             name: Optional[str] = None) -> hk.Module:
  if layer_norm:
    return LayerNormMLP(output_sizes, activate_final, name=name)
  return hk.nets.MLP(tuple(output_sizes), activate_final=activate_final, name=name)
