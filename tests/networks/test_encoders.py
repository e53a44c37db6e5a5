"""The encoder registry: every entry builds, says truly what it needs, and a new one is one `register` call."""

import dataclasses

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repertory import agents
from repertory.errors import ConfigError
from repertory.networks import encoders

IMAGES = jax.random.randint(jax.random.PRNGKey(0), (3, 36, 36, 4), 0, 256).astype(jnp.uint8)


def _apply(name, rng_seed, is_training):
  encoder = encoders.get_encoder(name)
  f = hk.transform_with_state(lambda x, t: encoder.build("der")(x, t))
  params, state = f.init(jax.random.PRNGKey(1), IMAGES, True)
  features, _ = f.apply(params, state, jax.random.PRNGKey(rng_seed), IMAGES, is_training)
  return params, state, np.asarray(features)


@pytest.mark.parametrize("name", encoders.encoder_names())
def test_each_encoder_gives_flat_features_and_declares_its_randomness_and_state(name):
  encoder = encoders.get_encoder(name)
  params, state, features = _apply(name, 2, True)
  assert features.ndim == 2 and features.shape[0] == 3 and np.all(np.isfinite(features))
  assert bool(jax.tree_util.tree_leaves(state)) == encoder.has_state
  _, _, other_key = _apply(name, 3, True)
  assert (np.abs(features - other_key).max() > 0) == encoder.random_in_training
  _, _, evaluation_a = _apply(name, 2, False)
  _, _, evaluation_b = _apply(name, 3, False)
  np.testing.assert_array_equal(evaluation_a, evaluation_b)  # evaluation never draws randomness
  metrics = encoder.metrics(params)
  assert ("alix_shift" in metrics) == name.startswith("alix")


def test_the_impala_resnet_has_fifteen_convolutions_and_a_256_output():
  params, _, features = _apply("impala-resnet", 0, False)
  convs = [name for name in params if "conv" in name]
  assert len(convs) == 3 * (1 + 2 * 2) and features.shape == (3, 256)
  assert params["impala_resnet/section_0_conv"]["w"].shape == (3, 3, 4, 16)


def test_drq_augments_and_the_others_do_not():
  shifted = encoders.get_encoder("drq").augment(jax.random.PRNGKey(0), IMAGES, 4)
  assert shifted.shape == IMAGES.shape and not np.array_equal(shifted, IMAGES)
  assert [n for n in encoders.encoder_names() if encoders.get_encoder(n).augment is not None] == ["drq"]


def test_an_unknown_encoder_is_one_line():
  with pytest.raises(ConfigError, match="unknown encoder 'resnet50'; choose one of der, nature") as info:
    agents.make_config("der", {"encoder": "resnet50"})
  assert "\n" not in str(info.value)
  with pytest.raises(ConfigError, match="keeps Haiku state"):
    agents.make_config("sac", {"encoder": "hyperbolic"})


def test_encoder_layers_choose_the_stack_of_the_encoders_that_take_several():
  from repertory.networks.conv import LAYERS
  assert encoders.LAYER_STACKS == tuple(LAYERS)
  assert agents.make_config("der", {"encoder": "alix", "encoder_layers": "nature"}).encoder_layers == "nature"
  with pytest.raises(ConfigError, match=r"not available for the der encoder \(it has one architecture; encoder_layers "
                                        r"applies to alix, hyperbolic\); use encoder_layers=der"):
    agents.make_config("der", {"encoder_layers": "nature"})
  with pytest.raises(ConfigError,
                     match="encoder_layers='resnet' is unknown; use one of der, nature, drqv2, alix_atari"):
    agents.make_config("der", {"encoder": "hyperbolic", "encoder_layers": "resnet"})
  # on the nature stack, A-LIX's features are DQN's 7×7×64 map of an 84×84 frame (no Linear 512)
  f = hk.transform(lambda x: encoders.get_encoder("alix").build("nature")(x, False))
  frames = jnp.zeros((1, 84, 84, 4), jnp.uint8)
  params = f.init(jax.random.PRNGKey(0), frames)
  assert f.apply(params, None, frames).shape == (1, 7 * 7 * 64)
  assert [p["w"].shape for n, p in sorted(params.items()) if "conv" in n] == [(8, 8, 4, 32), (4, 4, 32, 64), (3, 3, 64, 64)]


def test_a_registered_encoder_is_usable_by_an_agent_without_touching_it():
  class TinyEncoder(hk.Module):
    def __call__(self, images, is_training):
      del is_training
      return hk.Linear(8)(hk.Flatten()(images.astype(jnp.float32) / 255.0))

  encoders.register(encoders.Encoder("tiny", lambda layers: TinyEncoder(), "a test encoder"))
  try:
    from repertory.agents.der.networks import make_networks
    from repertory.environments.specs import EnvironmentSpec
    from dm_env import specs
    spec = EnvironmentSpec(specs.BoundedArray((36, 36, 4), np.uint8, 0, 255), specs.DiscreteArray(3),
                           specs.Array((), np.float32), specs.BoundedArray((), np.float32, 0.0, 1.0))
    networks = make_networks(spec, agents.make_config("der", {"encoder": "tiny", "num_atoms": "5"}))
    params, state = networks.network.init(jax.random.PRNGKey(0), IMAGES, True, True)
    logits, _ = networks.network.apply(params, state, jax.random.PRNGKey(1), IMAGES, False, False)
    assert logits.shape == (3, 3, 5) and any("tiny_encoder" in name for name in params)
  finally:
    encoders._ENCODERS.pop("tiny")
