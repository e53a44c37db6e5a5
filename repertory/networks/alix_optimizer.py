"""Optimiser wiring for A-LIX: the adaptive shift S gets its own Adam and a projection onto [0, S_max].

Cetin et al. 2022, arXiv 2207.00986 (Appendix, A-LIX hyper-parameters), reference code
Aladoro/Stabilizing-Off-Policy-RL `cfgs/algo/ALIX.yaml` (encoder_optimizer_builder). S is the parameter
`.../alix_shift` : `shift` that `alix_encoder.ALIXEncoder` creates.
"""

from typing import Any, Optional

import jax
import jax.numpy as jnp
import optax

from repertory.networks.alix import MAX_SHIFT, SHIFT_MODULE_NAME, SHIFT_PARAM_NAME

SHIFT_LEARNING_RATE = 2e-3  # ALIX.yaml encoder_optimizer_builder lr: 2e-3.
ATARI_SHIFT_LEARNING_RATE = 1e-4  # the paper's Atari 100k runs, arXiv 2207.00986 Table 7 ("maximum sampling shift lr").
SHIFT_B1 = 0.5  # ALIX.yaml betas: [0.5, 0.999].
SHIFT_B2 = 0.999
SHIFT_LABEL = "alix"
DEFAULT_LABEL = "default"

def _path_names(path) -> list:
  names = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        names.append(str(getattr(key, attr)))
        break
  return names


def _is_shift_path(path) -> bool:
  names = _path_names(path)
  if len(names) < 2 or names[-1] != SHIFT_PARAM_NAME:
    return False
  return names[-2].split("/")[-1] == SHIFT_MODULE_NAME


def shift_param_labels(params: Any) -> Any:
  """Labels every leaf: 'alix' for `.../alix_shift` : `shift`, 'default' otherwise."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: SHIFT_LABEL if _is_shift_path(path) else DEFAULT_LABEL, params)


def alix_shift(params: Any) -> Optional[jax.Array]:
  """Returns the S parameter (for logging), or None when `params` has none."""
  found = []
  jax.tree_util.tree_map_with_path(lambda path, leaf: found.append(leaf) if _is_shift_path(path) else None,
                                   params)
  return found[0] if found else None


def clip_params(minimum: float, maximum: float) -> optax.GradientTransformation:
  """Turns updates u into clip(p + u, minimum, maximum) − p (projection after the step).

  Stands in for the authors' in-place `P.clamp_(0, 1)` before every forward pass.
  """

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError("clip_params needs `params`: call optimizer.update(grads, opt_state, params).")
    updates = jax.tree.map(lambda p, u: jnp.clip(p + u, minimum, maximum) - p, params, updates)
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)


def make_alix_optimizer(default_optimizer: optax.GradientTransformation,
                        shift_learning_rate: float = SHIFT_LEARNING_RATE, b1: float = SHIFT_B1,
                        b2: float = SHIFT_B2, max_shift: float = MAX_SHIFT) -> optax.GradientTransformation:
  """`optax.multi_transform` giving S its own Adam and everything else `default_optimizer`.

  S: Adam(lr 2e-3, β = (0.5, 0.999)) (arXiv 2207.00986 App.; ALIX.yaml) followed by a projection onto
  [0, max_shift]. `update` must be called with `params`.
  """
  shift_optimizer = optax.chain(optax.adam(shift_learning_rate, b1=b1, b2=b2), clip_params(0.0, max_shift))
  return optax.multi_transform({DEFAULT_LABEL: default_optimizer, SHIFT_LABEL: shift_optimizer},
                               shift_param_labels)
