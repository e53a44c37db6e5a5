"""Starting a Ray cluster of this machine alone, attaching to a Ray cluster, and checking before a run starts that
the cluster can hold it."""

import os
import socket
from typing import Any, Dict, List, Optional

from repertory.errors import ConfigError


SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's single-machine mode


def start_local_ray(num_cpus: Optional[int] = None) -> None:
  """Starts Ray on this machine with every server listening on loopback only.

  Ray's servers (GCS, raylet, the workers' gRPC servers) listen on the node's address, and `ray.init()` takes the
  machine's routable address even when given 127.0.0.1: they are then reachable from the network. In its
  single-machine mode (the one it uses on macOS and Windows, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) the node's address
  is 127.0.0.1 and every server binds there (BUILD_NOTES.md, "Ports"). The mode is read when Ray is imported, so it
  is also set on Ray's constants for a process that imported Ray before; both are put back once Ray runs (the
  processes it started keep it)."""
  import ray
  from ray._private import ray_constants
  saved_env, saved_mode = os.environ.get(SINGLE_MACHINE_ENV), ray_constants.ENABLE_RAY_CLUSTER
  os.environ[SINGLE_MACHINE_ENV], ray_constants.ENABLE_RAY_CLUSTER = "0", False
  try:
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
  finally:
    ray_constants.ENABLE_RAY_CLUSTER = saved_mode
    if saved_env is None:
      os.environ.pop(SINGLE_MACHINE_ENV, None)
    else:
      os.environ[SINGLE_MACHINE_ENV] = saved_env


def check_ray_address(address: str, timeout_s: float = 5.0) -> None:
  """Fails fast with one line when nothing listens at a Ray cluster address."""
  if address == "auto":
    return
  host, _, port = address.replace("ray://", "").rpartition(":")
  try:
    with socket.create_connection((host, int(port)), timeout=timeout_s):
      pass
  except (OSError, ValueError):
    raise ConfigError(f"cannot reach a Ray cluster at '{address}'; start one with `ray start --head` "
                      "or leave out --ray-address to start a local cluster") from None


TOKEN_HINT = ("a cluster with Ray's token authentication needs RAY_AUTH_MODE=token and the cluster's token in "
              "RAY_AUTH_TOKEN, in RAY_AUTH_TOKEN_PATH or in ~/.ray/auth_token (where `ray get-auth-token --generate` "
              "writes it) on this host")


def attach_ray(address: str) -> None:
  """Connects this process to the Ray cluster at `address`; one line when that fails (nothing listens, or the
  cluster wants an authentication token this process lacks: Ray then gives up after ~20 s). Ray's C++ client
  logs every failed attempt to stderr; while it connects, stderr goes to a file read for the reason."""
  import tempfile
  import ray
  check_ray_address(address)
  with tempfile.TemporaryFile() as log:
    saved = os.dup(2)
    os.dup2(log.fileno(), 2)
    try:
      ray.init(address=address, log_to_driver=False, logging_level="ERROR")
      error = None
    except (ConnectionError, RuntimeError, ray.exceptions.RayError) as e:
      error = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    finally:
      os.dup2(saved, 2)
      os.close(saved)
    if error is None:
      return
    log.seek(0)
    if b"InvalidAuthToken" in log.read():
      raise ConfigError(f"the Ray cluster at '{address}' refused this process's authentication token (or it has none); "
                        f"{TOKEN_HINT}")
  raise ConfigError(f"cannot attach to the Ray cluster at '{address}' ({error}); {TOKEN_HINT}")


def check_cluster_cpus(needed: float) -> None:
  """One line when the attached Ray cluster has fewer CPUs in all than a run reserves."""
  import ray
  total = sum(n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive"))
  if needed > total:
    raise ConfigError(f"the Ray cluster has {total:g} CPU(s) but this run reserves {needed:g} (one per actor and one "
                      "per learner process); pass fewer --num-actors or add hosts to the cluster")


def learner_hosts(nodes: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """The hosts a learner process may take: those with an accelerator, or every host of a cluster that has none."""
  alive = [n for n in nodes if n.get("Alive")]
  with_gpu = [n for n in alive if n["Resources"].get("GPU", 0) > 0]
  return with_gpu or alive


def check_learner_hosts(wanted: int) -> None:
  """One line when the attached cluster has fewer learner hosts than `--learner-hosts` asks for."""
  if wanted <= 1:
    return
  import ray
  hosts = learner_hosts(ray.nodes())
  kind = "accelerator host" if any(n["Resources"].get("GPU", 0) > 0 for n in hosts) else "host"
  if wanted > len(hosts):
    raise ConfigError(f"--learner-hosts {wanted} asks for {wanted} learner hosts but the Ray cluster has {len(hosts)} "
                      f"{kind}(s); pass --learner-hosts {len(hosts)} or fewer, or add hosts with `ray start --address`")
