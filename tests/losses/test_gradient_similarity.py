"""Gradient-similarity gating of auxiliary losses (arXiv 1812.02224)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory.losses import combine_gradients, tree_cosine_similarity, tree_vdot


def _tree(key, scale=1.0):
  k1, k2 = jax.random.split(key)
  return {"w": scale * jax.random.normal(k1, (3, 4)), "b": [scale * jax.random.normal(k2, (5,))]}


@pytest.mark.parametrize("weighted", [True, False])
def test_update_never_hurts_main_direction(weighted):
  for seed in range(50):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    g_main, g_aux = _tree(k1), _tree(k2, scale=3.0)
    update, _ = combine_gradients(g_main, g_aux, weighted=weighted)
    assert float(tree_vdot(update, g_main)) >= float(tree_vdot(g_main, g_main)) - 1e-5


def test_cosine_over_flattened_tree():
  a, b = _tree(jax.random.PRNGKey(0)), _tree(jax.random.PRNGKey(1))
  fa = jnp.concatenate([x.ravel() for x in jax.tree.leaves(a)])
  fb = jnp.concatenate([x.ravel() for x in jax.tree.leaves(b)])
  expected = fa @ fb / (jnp.linalg.norm(fa) * jnp.linalg.norm(fb))
  np.testing.assert_allclose(tree_cosine_similarity(a, b), expected, rtol=1e-5)


@pytest.mark.parametrize("weighted", [True, False])
def test_aux_dropped_when_cosine_negative(weighted):
  g_main = _tree(jax.random.PRNGKey(2))
  g_aux = jax.tree.map(lambda x: -2.0 * x + 0.01, g_main)  # cos close to −1.
  update, cos = combine_gradients(g_main, g_aux, weighted=weighted)
  assert float(cos) < 0
  jax.tree.map(lambda u, m: np.testing.assert_array_equal(u, m), update, g_main)


def test_weighted_and_gated_values_when_cosine_positive():
  g_main = {"x": jnp.array([1.0, 0.0])}
  g_aux = {"x": jnp.array([1.0, 1.0])}
  cos = 1.0 / np.sqrt(2.0)
  weighted, c = combine_gradients(g_main, g_aux, weighted=True)
  np.testing.assert_allclose(c, cos, rtol=1e-6)
  np.testing.assert_allclose(weighted["x"], [1.0 + cos, cos], rtol=1e-6)
  gated, _ = combine_gradients(g_main, g_aux, weighted=False)
  np.testing.assert_allclose(gated["x"], [2.0, 1.0])


def test_zero_main_gradient_is_safe():
  g = {"x": jnp.zeros(3)}
  update, cos = combine_gradients(g, {"x": jnp.ones(3)})
  assert float(cos) == 0.0
  np.testing.assert_array_equal(update["x"], 0.0)
