"""Auxiliary-loss gating by gradient similarity (Du et al. 2018, arXiv 1812.02224).

For the parameters shared by the main and the auxiliary task (paper Sec. 2 and its Algorithm 1),
with g_main = ∇L_main, g_aux = ∇L_aux and cos = cos(g_main, g_aux):
  weighted variant:    update = g_main + max(0, cos)·g_aux
  unweighted variant:  update = g_main + 1[cos > 0]·g_aux
The cosine is taken over the whole flattened pytree. Since the aux gradient is only added when
⟨g_main, g_aux⟩ > 0, ⟨update, g_main⟩ ≥ ‖g_main‖²: the combined step never decreases the main
objective's first-order improvement. Parameters used by only one task should get their own
gradient directly (pass only the shared-parameter gradients here).
"""

from typing import Tuple

import chex
import jax
import jax.numpy as jnp

Array = chex.Array
EPS = 1e-12  # guards ‖g‖ = 0 (then cos = 0 and the aux gradient is dropped).


def tree_vdot(a: chex.ArrayTree, b: chex.ArrayTree) -> Array:
  """Σ over all leaves of ⟨a_leaf, b_leaf⟩ (float32 accumulation)."""
  chex.assert_trees_all_equal_shapes(a, b)
  leaves = jax.tree.leaves(jax.tree.map(lambda x, y: jnp.vdot(x, y).real, a, b))
  return jnp.sum(jnp.stack(leaves)) if leaves else jnp.zeros(())


def tree_cosine_similarity(a: chex.ArrayTree, b: chex.ArrayTree, eps: float = EPS) -> Array:
  """cos(a, b) of two pytrees, flattened and concatenated (arXiv 1812.02224 Sec. 2)."""
  norm_a = jnp.sqrt(tree_vdot(a, a))
  norm_b = jnp.sqrt(tree_vdot(b, b))
  return tree_vdot(a, b) / jnp.maximum(norm_a * norm_b, eps)


def combine_gradients(g_main: chex.ArrayTree, g_aux: chex.ArrayTree, weighted: bool = True,
                      eps: float = EPS) -> Tuple[chex.ArrayTree, Array]:
  """Gradient-similarity combination of Du et al. (arXiv 1812.02224, Algorithm 1).

  Args:
    g_main, g_aux: gradient pytrees of the same structure (shared parameters).
    weighted: True -> g_main + max(0, cos)·g_aux; False -> g_main + 1[cos > 0]·g_aux.
    eps: norm guard.

  Returns:
    (update pytree, cos scalar).
  """
  cos = tree_cosine_similarity(g_main, g_aux, eps)
  cos = jax.lax.stop_gradient(cos)
  weight = jnp.maximum(cos, 0.0) if weighted else (cos > 0).astype(cos.dtype)
  update = jax.tree.map(lambda m, x: m + weight.astype(m.dtype) * x, g_main, g_aux)
  return update, cos
