"""Probes that ask a network what it can still learn.

* `plasticity_probe`: from a copy of the current parameters θ, fit fresh random targets y = f_θ(x) + ε,
  ε ~ N(0, 1) for each output entry of the probe batch, by Adam on the mean squared error for K steps; the
  loss reached (1 at the start, 0 for a network that can fit anything) is the direct measure of lost
  plasticity. Centring the targets on the current outputs keeps the measure free of the outputs' scale
  (Q-values grow with training) (Lyle et al. 2022, arXiv 2204.09560, §3 "target-fitting capacity";
  Lyle et al. 2023, arXiv 2303.01486, §3). The network itself is untouched.
* `linear_probe_r2`: how well a ridge regression from one layer's activations predicts targets on held-out
  examples (R², fitted on the first half of the batch, scored on the second). Per layer it shows where the
  representation stops improving (the tunnel effect, Masarczyk et al. 2023, arXiv 2305.19753, §3 uses
  linear probes per layer).
"""

from typing import Any, Callable

import chex
import jax
import jax.numpy as jnp
import optax

PROBE_STEPS = 32
PROBE_LEARNING_RATE = 1e-3  # Adam's default step; Lyle et al. fit with the agent's optimiser family
RIDGE = 1e-3


def _mean_squared_error(outputs: Any, targets: Any) -> jax.Array:
  errors = jax.tree.map(lambda o, t: jnp.mean(jnp.square(o.astype(jnp.float32) - t)), outputs, targets)
  return jnp.mean(jnp.stack(jax.tree.leaves(errors)))


def random_targets(outputs: Any, key: jax.Array) -> Any:
  """outputs + ε, ε ~ N(0, 1) entry by entry."""
  leaves, treedef = jax.tree.flatten(outputs)
  keys = jax.random.split(key, len(leaves))
  noisy = [jax.lax.stop_gradient(x.astype(jnp.float32)) + jax.random.normal(k, x.shape, jnp.float32)
           for k, x in zip(keys, leaves)]
  return jax.tree.unflatten(treedef, noisy)


def plasticity_probe(forward: Callable[[Any], Any], params: Any, key: jax.Array, steps: int = PROBE_STEPS,
                     learning_rate: float = PROBE_LEARNING_RATE) -> jax.Array:
  """The MSE `forward` (params → outputs on the probe batch) reaches on `random_targets` after `steps` Adam steps."""
  targets = random_targets(forward(params), key)
  optimizer = optax.adam(learning_rate)
  loss = lambda p: _mean_squared_error(forward(p), targets)

  def fit(_, carry):
    p, opt_state = carry
    updates, opt_state = optimizer.update(jax.grad(loss)(p), opt_state, p)
    return optax.apply_updates(p, updates), opt_state

  fitted, _ = jax.lax.fori_loop(0, steps, fit, (params, optimizer.init(params)))
  return loss(fitted)


def linear_probe_r2(features: jax.Array, targets: jax.Array, ridge: float = RIDGE) -> jax.Array:
  """Held-out R² of ridge regression from `features` [B, F] to `targets` [B, K] (B ≥ 4)."""
  chex.assert_rank([features, targets], 2)
  chex.assert_equal_shape_prefix([features, targets], 1)
  half = features.shape[0] // 2
  x = features.astype(jnp.float32)
  std = jnp.std(x[:half], axis=0)
  x = (x - jnp.mean(x[:half], axis=0)) / jnp.where(std > 1e-6, std, 1.0)  # a unit constant on the fit half stays put
  y = targets.astype(jnp.float32)
  y_mean = jnp.mean(y[:half], axis=0)
  x_fit, y_fit = x[:half], y[:half] - y_mean
  gram = x_fit @ x_fit.T + ridge * x_fit.shape[1] * jnp.eye(half)  # dual form: cheap for wide features
  weights = x_fit.T @ jnp.linalg.solve(gram, y_fit)
  residual = y[half:] - y_mean - x[half:] @ weights
  total = jnp.sum(jnp.square(y[half:] - jnp.mean(y[half:], axis=0)))
  return 1.0 - jnp.sum(jnp.square(residual)) / jnp.where(total > 0, total, 1.0)
