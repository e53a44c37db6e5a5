"""PPR auxiliary policy-matching loss (arXiv 2006.15223)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory.errors import ConfigError
from repertory.losses import PPRAuxConfig, ppr_aux_loss

T, B, A = 4, 3, 5


def _logits(seed):
  ks = jax.random.split(jax.random.PRNGKey(seed), 3)
  return {name: 2.0 * jax.random.normal(k, (T, B, A))
          for name, k in zip(("reaction", "perception", "prediction"), ks)}


@pytest.mark.parametrize("direction", ["forward", "reverse", "symmetric"])
def test_non_negative_and_zero_for_equal_logits(direction):
  for seed in range(10):
    loss, _ = ppr_aux_loss(_logits(seed), direction=direction, beta=1.0)
    assert float(loss) >= 0.0
  same = _logits(0)["reaction"]
  loss, _ = ppr_aux_loss({"reaction": same, "perception": same, "prediction": same},
                         direction=direction)
  np.testing.assert_allclose(loss, 0.0, atol=1e-6)


def test_hand_computed_forward_kl_with_mask_and_beta():
  lg = _logits(1)
  mask = jnp.zeros((T, B)).at[1, 2].set(1.0)
  loss, metrics = ppr_aux_loss(lg, mask, pairs=(("reaction", "prediction"),), beta=0.3)
  p = jax.nn.softmax(lg["reaction"][1, 2])
  kl = jnp.sum(p * (jax.nn.log_softmax(lg["reaction"][1, 2]) -
                    jax.nn.log_softmax(lg["prediction"][1, 2])))
  np.testing.assert_allclose(metrics["ppr_kl_reaction_prediction"], kl, rtol=1e-5)
  np.testing.assert_allclose(loss, 0.3 * kl, rtol=1e-5)


def test_stop_gradient_side():
  lg = _logits(2)
  def f(reaction, sg):
    return ppr_aux_loss({**lg, "reaction": reaction}, stop_gradient=sg)[0]
  np.testing.assert_array_equal(jax.grad(f)(lg["reaction"], "first"), 0.0)
  assert np.abs(np.asarray(jax.grad(f)(lg["reaction"], "none"))).sum() > 0


def test_config_errors():
  with pytest.raises(ConfigError):
    PPRAuxConfig(direction="sideways")
  with pytest.raises(ConfigError):
    PPRAuxConfig(pairs=(("reaction", "reaction"),))
  with pytest.raises(ConfigError, match="names a core without logits"):
    ppr_aux_loss(_logits(0), pairs=(("reaction", "memory"),))
