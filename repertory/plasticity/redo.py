"""ReDo: recycling dormant units (Sokar et al. 2023, "The Dormant Neuron Phenomenon in Deep Reinforcement
Learning", arXiv 2302.12902, §4, Algorithm 1).

Every F updates, on a batch of data, each hidden unit i with score s_i = E|h_i| / mean_j E|h_j| ≤ τ gets its
incoming weights (and bias) re-drawn from the network's initialiser and its outgoing weights set to zero, so
the network's outputs are unchanged at the reset while the unit can learn again.

The layer graph is read from the forward pass (`activations.record_layer_calls`): an activation's consumers
are the leaf layers that read it, its producer the leaf layer called just before the first of them (the
layer whose output it is, after the non-linearity, for the sequential torsos and heads of this platform).
A unit's incoming parameters are the producer's parameters along their last (output) axis; its outgoing
ones are each consumer's weights along their input axis (the second to last), where a flattened
convolution output gives the consumer `positions × channels` rows, row r belonging to channel r mod C.
`recycles(layer)` names the layers ReDo may touch: an activation is recycled only when its producer and
every consumer are such layers (a recurrent core's layers read [input, hidden state] concatenations and
their units feed the next step, so a learner with a core recycles its torso's and heads' units only).
`redo_reset` also returns which weight entries it recycled (incoming and outgoing, biases included), so the
learner can zero their optimiser moments as the authors' released code does (`reset_moments`, config
`redo_reset_moments`): Algorithm 1 names weights only, the code also resets Adam's μ and ν of the recycled weights,
so a fresh unit's first updates are not steered by the moments of the dead one.
"""

from typing import Any, Callable, Dict, List, Mapping, Tuple

import jax
import jax.numpy as jnp

from repertory.plasticity import measures
from repertory.plasticity.activations import LayerCall, record_layer_calls

Forward = Callable[..., Any]  # (params, *inputs) → outputs on the batch (any pytree)


def _units(params: Mapping[str, Any], producer: str) -> int:
  weights = [x for x in params[producer].values() if x.ndim >= 2]
  return int(weights[0].shape[-1]) if weights else 0


def _groups(calls: List[LayerCall]) -> List[Tuple[str, jax.Array, List[str]]]:
  """(producer, activation, consumers) for every activation a leaf layer made and other leaf layers read."""
  groups: Dict[int, Tuple[str, jax.Array, List[str]]] = {}
  for i, call in enumerate(calls):
    if call.reads_observations:
      continue
    key = id(call.inputs)
    if key not in groups:
      if i == 0:
        continue
      groups[key] = (calls[i - 1].layer, call.inputs, [])
    groups[key][2].append(call.layer)
  return list(groups.values())


def _incoming(leaf: jax.Array, dormant: jax.Array) -> jax.Array:
  """Where `leaf` (a producer's parameter) holds incoming parameters of dormant units; all False if none."""
  if leaf.shape[-1:] != dormant.shape:
    return jnp.zeros(leaf.shape, bool)
  return jnp.broadcast_to(dormant, leaf.shape)


def _outgoing(leaf: jax.Array, dormant: jax.Array) -> jax.Array:
  """Where `leaf` (a consumer's parameter) holds outgoing weights of dormant units; all False if none."""
  if leaf.ndim < 2 or leaf.shape[-2] % dormant.shape[0]:
    return jnp.zeros(leaf.shape, bool)
  rows = jnp.tile(dormant, leaf.shape[-2] // dormant.shape[0])  # flattened [positions, channels]
  return jnp.broadcast_to(rows.reshape((1,) * (leaf.ndim - 2) + (-1, 1)), leaf.shape)


def redo_reset(forward: Forward, params: Mapping[str, Any], fresh: Mapping[str, Any], inputs: Tuple[Any, ...],
               threshold: float = measures.DORMANT_THRESHOLD,
               reads_inputs: Callable[[str], bool] = lambda layer: False,
               recycles: Callable[[str], bool] = lambda layer: True) -> Tuple[Any, Dict[str, jax.Array], Any]:
  """(params with the τ-dormant units of every hidden activation recycled, {"redo/<producer>": units reset},
  a tree like `params` of booleans: the entries recycled), scored on `forward(params, *inputs)`; `fresh` are
  freshly initialised parameters of the same network."""
  _, calls = record_layer_calls(forward, reads_inputs)(params, *inputs)
  new = {m: dict(leaves) for m, leaves in params.items()}
  recycled = {m: {n: jnp.zeros(jnp.shape(x), bool) for n, x in leaves.items()} for m, leaves in params.items()}
  counts, groups = {}, []
  for producer, activation, consumers in _groups(calls):
    if not (recycles(producer) and all(recycles(c) for c in consumers)):
      continue
    units = _units(params, producer)
    if not units or activation.shape[-1] % units:
      continue
    dormant = measures.unit_scores(activation.reshape(activation.shape[:-1] + (-1, units))) <= threshold
    groups.append((dormant, consumers))
    for name, leaf in params[producer].items():
      incoming = _incoming(leaf, dormant)
      new[producer][name] = jnp.where(incoming, fresh[producer][name], leaf)
      recycled[producer][name] = recycled[producer][name] | incoming
    counts[f"redo/{producer.replace('/~/', '/')}"] = jnp.sum(dormant)
  for dormant, consumers in groups:  # after every incoming reset, so a weight both in and out ends at zero
    for consumer in consumers:
      for name, leaf in new[consumer].items():
        outgoing = _outgoing(leaf, dormant)
        new[consumer][name] = jnp.where(outgoing, jnp.zeros_like(leaf), leaf)
        recycled[consumer][name] = recycled[consumer][name] | outgoing
  return new, counts, recycled


def reset_moments(optimizer: Any, opt_state: Any, recycled: Any) -> Any:
  """`opt_state` with every parameter-shaped part (Adam's μ and ν, ...) zeroed where `recycled` is True; step
  counts and other non-parameter fields kept (`optax.tree_utils.tree_map_params`)."""
  from optax.tree_utils import tree_map_params
  return tree_map_params(optimizer, lambda moment, mask: jnp.where(mask, jnp.zeros_like(moment), moment),
                         opt_state, recycled, transform_non_params=lambda x: x)
