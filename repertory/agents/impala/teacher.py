"""The teacher of policy distillation (arXiv 1902.02186): a finished impala run dir, checked before a run starts
(`check_teacher`) and loaded by the learner (`load_teacher`)."""

import dataclasses
import json
import os
from typing import Any, Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from repertory.agents.impala.config import IMPALAConfig
from repertory.agents.impala.learning import TrainingState, make_optimizer
from repertory.agents.impala.networks import IMPALANetworks, make_networks
from repertory.errors import ConfigError


def _teacher_config(run_dir: str) -> Tuple[Dict[str, Any], IMPALAConfig]:
  """The teacher run's config.json record and its IMPALA config; reads nothing else."""
  path = os.path.join(run_dir, "config.json")
  if not os.path.exists(path):
    raise ConfigError(f"teacher_run_dir '{run_dir}' has no config.json; point it at a finished impala run dir")
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, ValueError) as e:
    raise ConfigError(f"teacher run '{run_dir}': config.json is unreadable ({type(e).__name__}); "
                      "point teacher_run_dir at a finished impala run dir") from None
  if not isinstance(record, dict) or record.get("agent") != "impala" or "agent_config" not in record:
    agent = record.get("agent") if isinstance(record, dict) else None
    raise ConfigError(f"teacher run '{run_dir}' is a '{agent}' run; distillation needs an impala teacher")
  fields = {f.name for f in dataclasses.fields(IMPALAConfig)}
  values = {key: tuple(value) if isinstance(value, list) else value
            for key, value in record["agent_config"].items() if key in fields}
  values.update(distillation_kind="none", teacher_run_dir="")
  try:
    return record, IMPALAConfig(**values)
  except (TypeError, ConfigError) as e:
    raise ConfigError(f"teacher run '{run_dir}' has an unusable impala config: {str(e).splitlines()[0]}") from None


def check_teacher(run_dir: str, spec: Any) -> None:
  """What can be known about a teacher without loading it: an impala run with a checkpoint, trained on an
  environment with this spec (when its config.json records one)."""
  from repertory.environments.specs import spec_difference
  record, _ = _teacher_config(run_dir)
  difference = spec_difference(record.get("environment_spec", {}), spec)
  if difference:
    raise ConfigError(f"teacher in '{run_dir}' was trained on other {difference}; "
                      "distil from a teacher trained on the same task")
  directory = os.path.join(run_dir, "checkpoints")
  if not os.path.isdir(directory) or not os.listdir(directory):
    raise ConfigError(f"teacher run '{run_dir}' has no checkpoint yet; train it first")


def load_teacher(run_dir: str, spec: Any) -> Tuple[IMPALANetworks, Any]:
  """The teacher's networks (from its run's config.json) and parameters (its latest checkpoint)."""
  from repertory.utils.checkpointing import Checkpointer
  _, teacher_config = _teacher_config(run_dir)
  networks = make_networks(spec, teacher_config)
  params = networks.init(jax.random.PRNGKey(0))
  like = TrainingState(params, make_optimizer(teacher_config).init(params), jnp.zeros((), jnp.int32))
  directory = os.path.join(run_dir, "checkpoints")
  if not os.path.isdir(directory):
    raise ConfigError(f"teacher run '{run_dir}' has no checkpoints/; train it first")
  checkpointer = Checkpointer(directory)
  try:
    if checkpointer.latest_step() is None:
      raise ConfigError(f"teacher run '{run_dir}' has no checkpoint yet; train it first")
    try:
      restored = checkpointer.restore(like)
    except ConfigError:
      raise
    except Exception as e:  # orbax: structure or shape mismatch
      raise ConfigError(f"teacher in '{run_dir}' does not fit this environment/network "
                        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
  finally:
    checkpointer.close()
  want = jax.tree.map(lambda x: np.shape(x), like.params)
  got = jax.tree.map(lambda x: np.shape(x), restored.params)
  if want != got:
    raise ConfigError(f"teacher in '{run_dir}' has parameter shapes that do not fit this environment "
                      "(different observations or actions); distil from a teacher trained on the same task")
  return networks, jax.tree.map(jnp.asarray, restored.params)
