"""Value heads (optionally with layer normalisation in their hidden layers, `networks.mlp`)."""

from typing import Sequence

import haiku as hk
import jax
import jax.numpy as jnp

from repertory.networks.mlp import make_mlp


class DuelingQHead(hk.Module):
  """Dueling Q-values Q = V + A − mean(A) (Wang et al. 2016, arXiv 1511.06581, eq. 9)."""

  def __init__(self, num_actions: int, hidden_sizes: Sequence[int] = (256,), name: str = "dueling_q_head",
               layer_norm: bool = False, layer_kind: str = "dense"):
    super().__init__(name=name)
    self._num_actions = num_actions
    self._hidden_sizes = tuple(hidden_sizes)
    self._layer_norm, self._layer_kind = layer_norm, layer_kind

  def __call__(self, features: jax.Array) -> jax.Array:
    value = make_mlp(self._hidden_sizes + (1,), self._layer_norm, name="value", layer_kind=self._layer_kind)(features)
    advantages = make_mlp(self._hidden_sizes + (self._num_actions,), self._layer_norm, name="advantage",
                          layer_kind=self._layer_kind)(features)
    return value + advantages - jnp.mean(advantages, axis=-1, keepdims=True)


class QHead(hk.Module):
  """Plain Q-values from features."""

  def __init__(self, num_actions: int, hidden_sizes: Sequence[int] = (256,), name: str = "q_head",
               layer_norm: bool = False, layer_kind: str = "dense"):
    super().__init__(name=name)
    self._num_actions = num_actions
    self._hidden_sizes = tuple(hidden_sizes)
    self._layer_norm, self._layer_kind = layer_norm, layer_kind

  def __call__(self, features: jax.Array) -> jax.Array:
    return make_mlp(self._hidden_sizes + (self._num_actions,), self._layer_norm, layer_kind=self._layer_kind)(features)
