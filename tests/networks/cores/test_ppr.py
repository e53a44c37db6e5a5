"""PPR core (arXiv 2006.15223): slow state changes only at ticks (every τ steps from an episode start);
the prediction output ignores observations after the last tick; the perception output only sees the
observations since the last tick; the reaction output sees the current observation."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory.networks.cores import PerceptionPredictionReaction, PPROutput

T, B, D, TAU = 13, 2, 4, 4


@pytest.fixture(scope="module")
def ppr():
  def forward():
    core = PerceptionPredictionReaction(hidden_size=6, slow_period=TAU)
    return (lambda xs, resets: core.unroll(xs, core.initial_state(xs.shape[1]), resets)), (
        core.initial_state, core.__call__, core.unroll)

  transformed = hk.without_apply_rng(hk.multi_transform(forward))
  xs = jax.random.normal(jax.random.PRNGKey(0), (T, B, D))
  resets = jnp.zeros((T, B), bool).at[0].set(True)
  params = transformed.init(jax.random.PRNGKey(1), xs, resets)
  initial, step, unroll = transformed.apply
  return params, initial(params, B), jax.jit(step), jax.jit(unroll), xs


def test_slow_state_changes_only_at_ticks(ppr):
  params, state, step, _, xs = ppr
  resets = np.zeros((T, B), bool)
  resets[6, 1] = True  # row 1 starts a new episode at t = 6: its phase restarts there
  ticks = {0: {t for t in range(T) if t % TAU == 0}, 1: {t for t in range(T) if (t < 6 and t % TAU == 0)
                                                           or (t >= 6 and (t - 6) % TAU == 0)}}
  for t in range(T):
    new_output, new_state = step(params, xs[t], state, jnp.asarray(resets[t]))
    assert isinstance(new_output, PPROutput)
    for b in range(B):
      changed = not np.allclose(new_state.slow.hidden[b], state.slow.hidden[b]) or not np.allclose(
          new_state.slow.cell[b], state.slow.cell[b])
      assert changed == (t in ticks[b]), (t, b)
    phase_since_start = np.array([(t + 1) % TAU, ((t + 1 - 6) if t >= 6 else t + 1) % TAU])
    np.testing.assert_array_equal(new_state.phase, phase_since_start)
    state = new_state


def test_prediction_ignores_observations_after_last_tick(ppr):
  params, state, _, unroll, xs = ppr
  resets = jnp.zeros((T, B), bool).at[0].set(True)
  outputs, _ = unroll(params, xs, state, resets)
  # Ticks at 0, 4, 8, 12. Perturb the observations at 5..7: prediction at 5..7 unchanged,
  # reaction and perception change at once, prediction changes from the next tick (8) on.
  perturbed = xs.at[5:8].add(3.0)
  outputs_p, _ = unroll(params, perturbed, state, resets)
  np.testing.assert_allclose(outputs.prediction[:8], outputs_p.prediction[:8], rtol=0, atol=1e-7)
  assert not np.allclose(outputs.prediction[8:], outputs_p.prediction[8:], atol=1e-5)
  assert not np.allclose(outputs.reaction[5], outputs_p.reaction[5], atol=1e-5)
  assert not np.allclose(outputs.perception[5], outputs_p.perception[5], atol=1e-5)


def test_perception_sees_only_observations_since_last_tick(ppr):
  params, state, _, unroll, xs = ppr
  resets = jnp.zeros((T, B), bool).at[0].set(True)
  outputs, _ = unroll(params, xs, state, resets)
  perturbed = xs.at[:5].add(3.0)  # everything up to and including the tick at 4
  outputs_p, _ = unroll(params, perturbed, state, resets)
  np.testing.assert_allclose(outputs.perception[5:], outputs_p.perception[5:], rtol=0, atol=1e-7)
  assert not np.allclose(outputs.perception[4], outputs_p.perception[4], atol=1e-5)
  # ... while the slow path (prediction) and the reaction remember them.
  assert not np.allclose(outputs.prediction[5:8], outputs_p.prediction[5:8], atol=1e-5)
  assert not np.allclose(outputs.reaction[5:8], outputs_p.reaction[5:8], atol=1e-5)


def test_outputs_share_one_width(ppr):
  params, state, _, unroll, xs = ppr
  outputs, _ = unroll(params, xs, state, jnp.zeros((T, B), bool).at[0].set(True))
  assert outputs.reaction.shape == outputs.prediction.shape == outputs.perception.shape == (T, B, 6)
  assert PPROutput._fields == ("reaction", "prediction", "perception")
