"""The activations a network's layers see, recorded from any Haiku forward pass without changing it.

`record_layer_inputs(apply)` runs `apply` under a Haiku method interceptor and returns, beside its
outputs, the input of every parameterised leaf layer (`hk.Linear`, convolutions, noisy, spectrally
normalised, sparse layers: any module whose parameters are all its own, except normalisation layers), in
call order. A layer's input
is the previous layer's activation (after its non-linearity), which is where dormant units
(Sokar et al. 2023, arXiv 2302.12902, §3) and effective rank (Kumar et al. 2021, arXiv 2010.14498, §3)
are measured, for whatever activation the network uses.

Three rules keep the records to hidden activations:
* the first leaf layer inside an outermost module call made on a forward argument (a torso or encoder fed
  the observations, an IMPALA network's `step`) sees the observations, not an activation: it is not recorded;
* nor is a layer the caller names in `reads_inputs` (e.g. a critic's first layer fed observation and action);
* an activation fed to several layers (a dueling head's two streams) is recorded once, under the
  first layer that reads it.
The recorded arrays are the traced values themselves, so they must be used inside the same trace.
"""

from typing import Any, Callable, List, NamedTuple, Tuple

import haiku as hk
import jax


class LayerInput(NamedTuple):
  layer: str  # module name of the layer reading the activation, "/~/" shortened to "/"
  activation: jax.Array  # [B, ..., units]


def short_name(module_name: str) -> str:
  return module_name.replace("/~/", "/")


NORMALISATION_PARAMETERS = {"scale", "offset"}  # hk.LayerNorm's: its input is a pre-activation, not recorded


def _is_leaf_layer(module: hk.Module) -> bool:
  names = [n.rsplit("/", 1) for n in module.params_dict()]
  return (bool(names) and all(owner == module.module_name for owner, _ in names)
          and not {name for _, name in names} <= NORMALISATION_PARAMETERS)


class LayerCall(NamedTuple):
  layer: str  # the Haiku module name of the leaf layer (its parameters' key)
  inputs: jax.Array  # what it read
  reads_observations: bool  # the input is no hidden activation (the first rule above, or `reads_inputs`)


def record_layer_calls(apply: Callable[..., Any], reads_inputs: Callable[[str], bool] = lambda layer: False
                       ) -> Callable[..., Tuple[Any, List[LayerCall]]]:
  """`apply(*args)` → (its outputs, every leaf-layer call as a `LayerCall`, in call order)."""

  def recorded(*args, **kwargs):
    argument_ids = {id(x) for x in jax.tree.leaves((args, kwargs))}
    calls: List[LayerCall] = []
    first_layer_sees_observations = [False]
    depth = [0]
    querying = [False]  # `_is_leaf_layer` calls `params_dict`, itself an intercepted method

    def is_leaf_layer(module: hk.Module) -> bool:
      querying[0] = True
      try:
        return _is_leaf_layer(module)
      finally:
        querying[0] = False

    def interceptor(method, method_args, method_kwargs, context: hk.MethodContext):
      if querying[0]:
        return method(*method_args, **method_kwargs)
      if depth[0] == 0:  # an outermost module call (any method) starts
        leaves = jax.tree.leaves((method_args, method_kwargs))
        first_layer_sees_observations[0] = any(id(x) in argument_ids for x in leaves)
      if context.method_name == "__call__" and method_args and is_leaf_layer(context.module):
        layer = context.module.module_name
        observed = first_layer_sees_observations[0] or reads_inputs(short_name(layer))
        first_layer_sees_observations[0] = False
        calls.append(LayerCall(layer, method_args[0], observed))
      depth[0] += 1
      try:
        return method(*method_args, **method_kwargs)
      finally:
        depth[0] -= 1

    with hk.experimental.intercept_methods(interceptor):
      outputs = apply(*args, **kwargs)
    return outputs, calls

  return recorded


def record_layer_inputs(apply: Callable[..., Any], reads_inputs: Callable[[str], bool] = lambda layer: False
                        ) -> Callable[..., Tuple[Any, List[LayerInput]]]:
  """`apply(*args)` → (its outputs, the `LayerInput`s of its hidden activations, in call order)."""

  def recorded(*args, **kwargs):
    outputs, calls = record_layer_calls(apply, reads_inputs)(*args, **kwargs)
    records: List[LayerInput] = []
    seen = set()
    for call in calls:
      if not call.reads_observations and id(call.inputs) not in seen:
        seen.add(id(call.inputs))
        records.append(LayerInput(short_name(call.layer), call.inputs))
    return outputs, records

  return recorded
