"""What A-LIX costs its torso: a DER-sized update (encoder, dueling C51 head, Adam; batch 32 of 84x84x4 frames)
with the LIX layers on (training) against the same torso without them (A-LIX in evaluation mode is the plain
CNN with the same weights), per conv stack, on one pinned core with a single-threaded XLA:CPU pool as the
benchmark runner's workers.

Usage: .venv/bin/python benchmarks/alix_cost.py [--stacks der,nature,drqv2] [--updates 30] [--core 0]
Prints the machine, commit and date, then one line per stack. Figures belong in BUILD_NOTES.md ("A-LIX cost").
"""

import argparse
import os
import sys
import time


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--stacks", default="der,nature,drqv2", help="conv.LAYERS stacks to time, comma-separated")
  parser.add_argument("--updates", type=int, default=30, help="timed updates per measurement (after 3 warm-up updates)")
  parser.add_argument("--batch-size", type=int, default=32, help="frames per update (DER: 32)")
  parser.add_argument("--core", type=int, default=0, help="the CPU core to pin to (-1: no pinning, all threads)")
  args = parser.parse_args()
  if args.updates < 1 or args.batch_size < 1:
    sys.exit("alix_cost: --updates and --batch-size must be >= 1")
  if args.core >= 0:
    if args.core not in os.sched_getaffinity(0):
      sys.exit(f"alix_cost: --core {args.core} is not available here (cores {sorted(os.sched_getaffinity(0))})")
    os.sched_setaffinity(0, {args.core})
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false"
  import haiku as hk
  import jax
  import jax.numpy as jnp
  import optax
  from repertory.agents.der.networks import DuelingCategoricalHead
  from repertory.networks.alix import ALIXConfig
  from repertory.networks.alix_encoder import ALIXEncoder
  from repertory.utils.provenance import provenance

  info = provenance()
  print(f"{info['machine']} | commit {info['commit']} | {info['date']} | {info['jax_devices']} | "
        f"{'core ' + str(args.core) if args.core >= 0 else 'all cores'}", flush=True)
  frames = jax.random.randint(jax.random.PRNGKey(0), (args.batch_size, 84, 84, 4), 0, 256).astype(jnp.uint8)
  targets = jax.random.normal(jax.random.PRNGKey(1), (args.batch_size, 6, 51))

  def time_update(stack: str, lix: bool) -> float:
    net = hk.transform(lambda x: DuelingCategoricalHead(6, 51, 256, 0.1)(ALIXEncoder(ALIXConfig(stack))(x, lix), False))
    optimizer = optax.adam(1e-4)
    params = net.init(jax.random.PRNGKey(2), frames)
    state = (params, optimizer.init(params), jax.random.PRNGKey(3))

    @jax.jit
    def update(state):
      params, opt_state, key = state
      key, step_key = jax.random.split(key)
      grads = jax.grad(lambda p: jnp.mean(jnp.square(net.apply(p, step_key, frames) - targets)))(params)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, key

    for _ in range(3):
      state = update(state)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(args.updates):
      state = update(state)
    jax.block_until_ready(state)
    return (time.perf_counter() - start) / args.updates

  for stack in args.stacks.split(","):
    try:
      ALIXConfig(stack)
    except Exception as e:  # a ConfigError naming the stacks there are
      sys.exit(f"alix_cost: {e}")
    plain, with_lix = time_update(stack, False), time_update(stack, True)
    print(f"{stack} stack: plain torso {1e3 * plain:.1f} ms/update, A-LIX {1e3 * with_lix:.1f} ms/update "
          f"({with_lix / plain:.2f}x)", flush=True)


if __name__ == "__main__":
  main()
