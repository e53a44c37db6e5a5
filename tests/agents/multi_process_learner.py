"""One process of a multi-process DQN learner, run by test_data_parallel.py:

    python multi_process_learner.py PROCESS_ID NUM_PROCESSES PORT OUT_DIR

With NUM_PROCESSES > 1 the processes form one JAX program over loopback (CPU collectives through gloo)
and each feeds its share of every global batch; with 1 the process trains on the whole batch alone.
Writes the parameters and the priorities of its rows to OUT_DIR/process<ID>.npz.
"""

import os
import sys

import numpy as np

GLOBAL_BATCH, STEPS, SGD_STEPS_PER_CALL = 16, 3, 2


def main(process_id: int, num_processes: int, port: int, out_dir: str) -> None:
  import jax
  from repertory.launch.learner_processes import LearnerProcesses
  LearnerProcesses(process_id, num_processes, f"127.0.0.1:{port}").initialize(timeout_s=120)
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  from learner_helpers import random_batch
  from repertory import environments
  from repertory.agents import make_builder
  from repertory.agents.data_parallel import DataParallel
  from repertory.environments.specs import make_environment_spec

  environment = environments.make("gym:CartPole-v1", seed=0)
  spec = make_environment_spec(environment)
  environment.close()
  builder = make_builder("dqn", {"batch_size": str(GLOBAL_BATCH), "sgd_steps_per_call": str(SGD_STEPS_PER_CALL)})
  devices = DataParallel.create("auto", GLOBAL_BATCH)
  rows = slice(process_id * devices.local_batch_size(GLOBAL_BATCH), (process_id + 1) * devices.local_batch_size(GLOBAL_BATCH))

  def local_batches():
    for seed in range(STEPS * SGD_STEPS_PER_CALL):
      batch = random_batch(builder.example_item(spec), GLOBAL_BATCH, spec.actions.num_values, seed)
      rng = np.random.default_rng(100 + seed)  # unequal probabilities: weights normalised over the global batch
      batch = batch._replace(probabilities=rng.uniform(0.001, 0.01, GLOBAL_BATCH))
      yield batch._replace(keys=batch.keys[rows], probabilities=batch.probabilities[rows],
                           table_size=batch.table_size[rows], data=jax.tree.map(lambda x: x[rows], batch.data))

  priorities = []
  learner = builder.make_learner(builder.make_networks(spec), spec, local_batches(),
                                 lambda keys, p: priorities.append(np.asarray(p)), seed=0, data_parallel=devices)
  assert learner.data_parallel.num_devices == num_processes == learner.data_parallel.num_processes
  for _ in range(STEPS):
    learner.step()
  params = [np.asarray(x) for x in jax.tree.leaves(learner.state().params)]
  np.savez(os.path.join(out_dir, f"process{process_id}.npz"),
           priorities=np.stack(priorities).reshape(STEPS, SGD_STEPS_PER_CALL, -1),
           **{f"param{i}": p for i, p in enumerate(params)})
  if num_processes > 1:
    jax.distributed.shutdown()


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
