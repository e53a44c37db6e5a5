"""The MLP every torso and head builds: `hk.nets.MLP`, or with layer normalisation before each non-linearity,
or with sparse layers (`layer_kind`: Powerpropagation or Top-KAST, `repertory.networks.sparse`).

Layer normalisation keeps a network trainable on a changing sequence of tasks (Lyle et al. 2023,
"Understanding plasticity in neural networks", arXiv 2303.01486, where LayerNorm is placed before the
activation of each hidden layer). With neither, `make_mlp` is exactly `hk.nets.MLP` (same parameter names).
Sparse layers are named `<kind>_linear_<i>`, so `sparse.topkast_penalty` can be given just their parameters.
"""

from typing import Optional, Sequence

import haiku as hk
import jax

from repertory.networks import sparse


class LayerNormMLP(hk.Module):
  """Linear → (LayerNorm →) ReLU for each hidden layer, then a plain final Linear (or one more (LN +) ReLU when
  `activate_final`). Layers are `linear_<i>` (`<kind>_linear_<i>` for sparse kinds) and `layer_norm_<i>`."""

  def __init__(self, output_sizes: Sequence[int], activate_final: bool = False, name: Optional[str] = None,
               layer_norm: bool = True, layer_kind: str = "dense"):
    super().__init__(name=name)
    self._sizes, self._activate_final = tuple(output_sizes), activate_final
    self._layer_norm, self._kind = layer_norm, layer_kind

  def __call__(self, x: jax.Array) -> jax.Array:
    prefix = "" if self._kind == "dense" else f"{self._kind}_"
    for i, size in enumerate(self._sizes):
      x = sparse.make_linear(self._kind, size, name=f"{prefix}linear_{i}")(x)
      if i < len(self._sizes) - 1 or self._activate_final:
        if self._layer_norm:
          x = hk.LayerNorm(-1, create_scale=True, create_offset=True, name=f"layer_norm_{i}")(x)
        x = jax.nn.relu(x)
    return x


def make_mlp(output_sizes: Sequence[int], layer_norm: bool = False, activate_final: bool = False,
             name: Optional[str] = None, layer_kind: str = "dense") -> hk.Module:
  if layer_norm or layer_kind != "dense":
    return LayerNormMLP(output_sizes, activate_final, name=name or "mlp", layer_norm=layer_norm,
                        layer_kind=layer_kind)
  return hk.nets.MLP(tuple(output_sizes), activate_final=activate_final, name=name)
