"""Plasticity injection (arXiv 2305.15555, eq. 1) on a Haiku head: outputs kept at T, trained count kept, freezing."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from repertory.networks import heads
from repertory.networks.noisy import NoisyLinear
from repertory.plasticity import injection


def _network(noisy=False):
  def forward(x):
    features = jax.nn.relu(hk.Linear(8, name="torso")(x))
    if noisy:
      return injection.InjectableHead(lambda name: NoisyLinear(3, 0.5, name=name))(features, True)
    return injection.InjectableHead(lambda name: heads.DuelingQHead(3, (6,), name=name))(features)
  return hk.transform(forward)


def _trained_params(network, params, x, steps=5):
  """A few Adam steps on a regression loss with injection's freezing, so θ is no longer at its initial values."""
  optimizer = optax.chain(optax.adam(1e-2), injection.freeze_by_injection())
  state = optimizer.init(params)
  loss = lambda p: jnp.mean(jnp.square(network.apply(p, jax.random.PRNGKey(9), x) - 1.0))  # noqa: E731
  for _ in range(steps):
    updates, state = optimizer.update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, updates)
  return params, optimizer, state, loss


def test_injection_leaves_every_output_bit_for_bit_unchanged():
  x = jax.random.normal(jax.random.PRNGKey(1), (16, 5))
  for network in (_network(), _network(noisy=True)):  # noisy: the three heads must draw the same noise
    params = network.init(jax.random.PRNGKey(0), x)
    params, *_ = _trained_params(network, params, x)
    injected = injection.inject(params)
    assert not injection.is_injected(params) and injection.is_injected(injected)
    apply = jax.jit(network.apply)
    before, after = apply(params, jax.random.PRNGKey(3), x), apply(injected, jax.random.PRNGKey(3), x)
    np.testing.assert_array_equal(np.asarray(before).view(np.uint32), np.asarray(after).view(np.uint32))
    # The injected heads are really in the sum: perturbing θ′ now changes the output.
    scope = next(iter(injection.injection_scopes(injected)))
    moved = {m: (jax.tree.map(lambda w: w + 0.1, v) if m.startswith(f"{scope}/injected_head") else v)
             for m, v in injected.items()}
    assert not np.allclose(apply(moved, jax.random.PRNGKey(3), x), after)


def test_injection_keeps_the_trained_parameter_count_and_swaps_theta_for_theta_prime():
  x = jax.random.normal(jax.random.PRNGKey(1), (16, 5))
  network = _network()
  params = network.init(jax.random.PRNGKey(0), x)
  head = sum(v.size for m, leaves in params.items() if "/head" in m for v in leaves.values())
  torso = sum(v.size for v in params["torso"].values())
  assert injection.trained_parameter_count(params) == torso + head
  injected = injection.inject(params)
  assert injection.trained_parameter_count(injected) == torso + head
  mask = injection.trained_mask(injected)
  for module, leaves in mask.items():
    expected = module == "torso" or module.startswith("injectable_head/injected_head")
    assert all(bool(m) == expected for m in leaves.values()), module


def test_freezing_moves_theta_before_injection_and_only_theta_prime_after():
  x = jax.random.normal(jax.random.PRNGKey(1), (16, 5))
  network = _network()
  initial = network.init(jax.random.PRNGKey(0), x)
  trained, *_ = _trained_params(network, initial, x)

  def changed(a, b, prefix):
    return {m: not all(np.array_equal(a[m][n], b[m][n]) for n in a[m]) for m in a if m.startswith(prefix)}

  assert all(changed(initial, trained, "injectable_head/head").values())
  assert not any(changed(initial, trained, "injectable_head/injected").values())  # θ′, θ″ fresh until T
  injected = injection.inject(trained)
  for module in injected:  # θ″ := θ′
    if module.startswith("injectable_head/injected_copy"):
      twin = module.replace("injected_copy", "injected_head")
      jax.tree.map(np.testing.assert_array_equal, injected[module], injected[twin])
  later, *_ = _trained_params(network, injected, x)
  assert not any(changed(injected, later, "injectable_head/head").values())  # θ frozen
  assert not any(changed(injected, later, "injectable_head/injected_copy").values())  # θ″ frozen
  assert all(changed(injected, later, "injectable_head/injected_head").values())  # θ′ trains
  assert changed(injected, later, "torso")["torso"]  # the torso keeps learning
  np.testing.assert_array_equal(later["injectable_head"]["active"], 1.0)
