"""DER acting: greedy on expected returns of a noisy network with fresh noise every step.

Training actors draw new noisy-net weights from their rng at every step (Fortunato et al. 2018,
arXiv 1706.10295, Algorithm 1) on top of ε_train (0 by default). Evaluation uses the mean weights
and ε_eval = 0.001 (Atari 100k protocol, Dopamine DER.gin). Without noisy layers (hyperbolic encoder)
training uses Dopamine's `linearly_decaying_epsilon`: ε = 1 during the warm-up, then linearly to 0.01.
"""

from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from repertory.agents.der import networks as der_networks


class DERPolicy(NamedTuple):
  """policy(variables, key, observations [B, ...], epsilon) → actions [B]; one for training, one for evaluation."""

  train: Callable[..., Any]
  evaluate: Callable[..., Any]
  has_noise: bool  # False: no noisy layers, so training explores ε-greedily


def make_policy(networks: der_networks.DERNetworks) -> DERPolicy:
  import distrax

  def build(noisy: bool):
    @jax.jit
    def policy(params, net_state, key, observations, epsilon):
      noise_key, sample_key = jax.random.split(key)
      logits, _ = networks.network.apply(params, net_state, noise_key, observations, False, noisy)
      q = der_networks.q_values(logits, networks.atoms)
      return distrax.EpsilonGreedy(q, epsilon).sample(seed=sample_key)

    def call(variables, key, observations, epsilon):
      return policy(variables["params"], variables["state"], key, observations, epsilon)

    return call

  return DERPolicy(train=build(networks.has_noise), evaluate=build(False), has_noise=networks.has_noise)


def linearly_decaying_epsilon(decay_steps: int, warmup_steps: int, floor: float) -> Callable[[int], float]:
  """Dopamine's schedule: 1 for `warmup_steps`, then linear to `floor` over `decay_steps`."""
  def epsilon(step: int) -> float:
    steps_left = decay_steps + warmup_steps - step
    bonus = float(np.clip((1.0 - floor) * steps_left / max(1, decay_steps), 0.0, 1.0 - floor))
    return floor + bonus
  return epsilon
