"""Properties every core shares (METHODS.md, "Recurrent cores"): whole == two segments with the carried
state; after a reset flag the outputs equal a fresh start; causality; `__call__` step by step ==
`unroll`. Parametrised over every name in CORE_NAMES."""

import functools

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory.errors import ConfigError
from repertory.networks.cores import CORE_NAMES, make_core, reset_state

T, B, D = 12, 3, 5
SPLIT = 6  # both segments have length 6: one compiled shape fewer
# Small sizes; the GTrXL memory (4) is shorter than the window so the sliding mask is exercised.
SMALL = {
    "lstm": dict(hidden_size=8),
    "gtrxl": dict(hidden_size=8, num_layers=2, num_heads=2, memory_size=4),
    "ppr": dict(hidden_size=8, slow_period=3),
    "lru": dict(hidden_size=8, state_size=6, num_layers=2),
    "none": dict(hidden_size=8),
}
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


class Built:
  def __init__(self, name):
    def forward():
      core = make_core(name, **SMALL[name])

      def init(xs, resets):
        return core.unroll(xs, core.initial_state(xs.shape[1]), resets)

      return init, (core.initial_state, core.__call__, core.unroll)

    transformed = hk.without_apply_rng(hk.multi_transform(forward))
    xs, resets = inputs(0)
    self.params = jax.jit(transformed.init)(jax.random.PRNGKey(1), xs, resets)
    initial_state, step, unroll = transformed.apply
    self.initial_state = lambda batch: initial_state(self.params, batch)
    self._step = jax.jit(step)
    self._unroll = jax.jit(unroll)

  def step(self, x, state, reset=None):
    return self._step(self.params, x, state, reset)

  def unroll(self, xs, state, resets):
    return self._unroll(self.params, xs, state, resets)


@functools.lru_cache(maxsize=None)
def built(name) -> Built:
  return Built(name)


def inputs(seed, length=T):
  xs = jax.random.normal(jax.random.PRNGKey(seed), (length, B, D))
  resets = np.zeros((length, B), bool)
  resets[0, :] = True  # episode start
  resets[3, 1] = True  # resets inside both segments and right at the split
  resets[SPLIT, 2] = True
  resets[9, 0] = True
  return xs, jnp.asarray(resets)


def warm_state(core: Built, seed=7):
  """A non-initial state (so resets have something to erase)."""
  xs, _ = inputs(seed)
  _, state = core.unroll(xs, core.initial_state(B), jnp.zeros((T, B), bool).at[0].set(True))
  return state


def assert_trees_close(a, b, **kwargs):
  kwargs = {**TOLERANCE, **kwargs}
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kwargs)


def time_slice(tree, start, stop=None):
  return jax.tree.map(lambda a: a[start:stop], tree)


@pytest.mark.parametrize("name", CORE_NAMES)
def test_whole_equals_two_segments(name):
  core = built(name)
  xs, resets = inputs(1)
  resets = resets.at[0].set(False)  # start from a warm state
  state = warm_state(core)
  whole, final = core.unroll(xs, state, resets)
  first, middle = core.unroll(xs[:SPLIT], state, resets[:SPLIT])
  second, final_2 = core.unroll(xs[SPLIT:], middle, resets[SPLIT:])
  assert_trees_close(whole, jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first, second))
  assert_trees_close(final, final_2)


@pytest.mark.parametrize("name", CORE_NAMES)
def test_reset_equals_fresh_start(name):
  core = built(name)
  xs, _ = inputs(2)
  resets = jnp.zeros((T, B), bool).at[SPLIT].set(True)
  outputs, final = core.unroll(xs, warm_state(core), resets)
  fresh, fresh_final = core.unroll(xs[SPLIT:], core.initial_state(B), resets[SPLIT:])
  assert_trees_close(time_slice(outputs, SPLIT), fresh)
  assert_trees_close(final, fresh_final)
  # Resetting one row only changes that row.
  one = jnp.zeros((T, B), bool).at[SPLIT, 1].set(True)
  outputs_one, _ = core.unroll(xs, warm_state(core), one)
  no_reset, _ = core.unroll(xs, warm_state(core), jnp.zeros((T, B), bool))
  for a, b, c in zip(jax.tree.leaves(outputs_one), jax.tree.leaves(fresh), jax.tree.leaves(no_reset)):
    np.testing.assert_allclose(a[SPLIT:, 1], b[:, 1], **TOLERANCE)
    np.testing.assert_allclose(a[:, [0, 2]], c[:, [0, 2]], **TOLERANCE)
    if name != "none":
      assert not np.allclose(a[SPLIT:, 1], c[SPLIT:, 1], atol=1e-4)  # the reset did something


@pytest.mark.parametrize("name", CORE_NAMES)
def test_causal(name):
  core = built(name)
  xs, resets = inputs(3)
  state = warm_state(core)
  outputs, _ = core.unroll(xs, state, resets)
  perturbed = xs.at[SPLIT + 1:].add(10.0)
  outputs_p, _ = core.unroll(perturbed, state, resets)
  assert_trees_close(time_slice(outputs, 0, SPLIT + 1), time_slice(outputs_p, 0, SPLIT + 1), rtol=0, atol=1e-6)
  changed = [not np.allclose(a[SPLIT + 1:], b[SPLIT + 1:])
             for a, b in zip(jax.tree.leaves(outputs), jax.tree.leaves(outputs_p))]
  assert any(changed)


@pytest.mark.parametrize("name", CORE_NAMES)
def test_step_by_step_equals_unroll(name):
  core = built(name)
  xs, resets = inputs(4)
  state = warm_state(core)
  outputs, final = core.unroll(xs, state, resets)
  stepped = []
  for t in range(T):
    output, state = core.step(xs[t], state, resets[t])
    stepped.append(output)
  assert_trees_close(outputs, jax.tree.map(lambda *a: jnp.stack(a), *stepped))
  assert_trees_close(final, state)


@pytest.mark.parametrize("name", CORE_NAMES)
def test_step_without_reset_and_state_batch_axis(name):
  core = built(name)
  state = core.initial_state(B)
  for leaf in jax.tree.leaves(state):
    assert leaf.shape[0] == B
  xs, _ = inputs(5)
  out_none, state_none = core.step(xs[0], warm_state(core))
  out_false, state_false = core.step(xs[0], warm_state(core), jnp.zeros((B,), bool))
  assert_trees_close(out_none, out_false)
  assert_trees_close(state_none, state_false)
  # A reset step equals a step from the initial state.
  out_reset, _ = core.step(xs[0], warm_state(core), jnp.ones((B,), bool))
  out_fresh, _ = core.step(xs[0], core.initial_state(B))
  assert_trees_close(out_reset, out_fresh)


def test_unknown_core_and_argument():
  with pytest.raises(ConfigError, match=r"^unknown core 'x'; choose one of lstm, gtrxl, ppr, lru, none$"):
    hk.transform(lambda: make_core("x")).init(None)
  with pytest.raises(ConfigError, match="does not take bogus"):
    hk.transform(lambda: make_core("lstm", bogus=1)).init(None)
  assert issubclass(ConfigError, ValueError)


def test_reset_state_helper():
  state = {"a": jnp.ones((3, 2)), "b": (jnp.full((3,), 5, jnp.int32), jnp.ones((3, 2, 2), bool))}
  initial = jax.tree.map(jnp.zeros_like, state)
  out = reset_state(state, initial, jnp.array([True, False, True]))
  np.testing.assert_array_equal(out["a"], [[0, 0], [1, 1], [0, 0]])
  np.testing.assert_array_equal(out["b"][0], [0, 5, 0])
  np.testing.assert_array_equal(out["b"][1].all(axis=(1, 2)), [False, True, False])
  assert reset_state((), (), jnp.array([True])) == ()
