"""The `ray` launch type: each node of a `Program` a named Ray actor (its own process), reached through
`RayProxy` handles that follow a restarted node to its next incarnation; attaching to a cluster."""

import os
import socket
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

from repertory.errors import ConfigError
from repertory.launch.launchers import NodeFailure
from repertory.launch.program import Handle, Program


_GIVE_UP = threading.Event()


def give_up_waiting_for_restarts() -> None:
  """Proxies of this process stop waiting for dead nodes to come back (the run is stopping)."""
  _GIVE_UP.set()


def ray_actor_name(base: str, incarnation: int) -> str:
  return f"{base}#{incarnation}"


class RayProxy:
  """Forwards method calls to a Ray actor and waits for the answer at most `timeout_s`.

  When the actor has died, the call waits (within `timeout_s`) for the node's next incarnation, the named
  actor the driver starts in its place (`RayLaunch.restart`), and goes to it."""

  def __init__(self, actor: Any, name: str, timeout_s: float, base: Optional[str] = None, incarnation: int = 0,
               namespace: Optional[str] = None):
    self.__dict__.update(_actor=actor, _name=name, _timeout_s=timeout_s, _base=base, _incarnation=incarnation,
                         _namespace=namespace)

  def _next_incarnation(self, deadline: float) -> bool:
    import ray
    while self._base is not None and time.monotonic() < deadline and not _GIVE_UP.is_set():
      for incarnation in range(self._incarnation + 1, self._incarnation + 4):
        try:
          actor = ray.get_actor(ray_actor_name(self._base, incarnation), namespace=self._namespace)
        except ValueError:  # not started (yet)
          continue
        self.__dict__.update(_actor=actor, _incarnation=incarnation)
        return True
      time.sleep(0.2)
    return False

  def __getattr__(self, method: str):
    import ray

    def call(*args, **kwargs):
      deadline = time.monotonic() + self._timeout_s
      while True:
        try:
          return ray.get(getattr(self._actor, method).remote(*args, **kwargs), timeout=self._timeout_s)
        except ray.exceptions.GetTimeoutError:
          raise TimeoutError(f"node '{self._name}' did not answer {method}() within {self._timeout_s:.0f} s") from None
        except ray.exceptions.RayActorError:
          if not self._next_incarnation(deadline):
            raise NodeFailure(f"node '{self._name}' died") from None
    return call

  def __getstate__(self):
    return dict(self.__dict__)

  def __setstate__(self, state):
    self.__dict__.update(state)


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
  import os
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
                      "for the learner); pass fewer --num-actors or add hosts to the cluster")


RAY_NAMESPACE = "repertory"


class RayLaunch:
  """Each node a Ray actor (its own process). The learner takes a GPU when the cluster has one;
  actors go to CPU-only hosts when there are any."""

  def __init__(self, program: Program, address: Optional[str] = None, timeout_s: float = 120.0,
               num_cpus: Optional[int] = None):
    import ray
    self._ray = ray
    self._program = program
    self._timeout_s = timeout_s
    self._started_ray = False
    self._reaper = None
    if not ray.is_initialized():
      import signal
      handler = signal.getsignal(signal.SIGTERM)
      if address is not None:
        attach_ray(address)
      else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        self._started_ray = True
        from repertory.launch import ray_reaper
        self._reaper = ray_reaper.watch(os.getpid())  # a SIGKILLed driver leaves no Ray process behind
      signal.signal(signal.SIGTERM, handler)  # ray.init installs its own, which exits with a C++ dump
    check_cluster_cpus(sum(program.node(h).num_cpus for h in program.handles()))
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    self._has_gpu = any(n["Resources"].get("GPU", 0) > 0 for n in nodes)
    self._cpu_hosts = [n["NodeID"] for n in nodes if n["Resources"].get("GPU", 0) == 0]
    self._next_cpu_host = 0
    self.actors: Dict[Handle, Any] = {}
    self._proxies: Dict[Handle, RayProxy] = {}
    self._runs: Dict[Any, Handle] = {}
    self._incarnations: Dict[Handle, int] = {}
    self._base = f"{program.name}-{uuid.uuid4().hex[:8]}"  # named actors, so proxies find a restarted node
    try:
      for handle in program.handles():
        self._start(handle)
    except BaseException:
      self.shutdown()
      raise

  def _options(self, handle: Handle) -> Dict[str, Any]:
    node = self._program.node(handle)
    options: Dict[str, Any] = {"max_concurrency": 8, "num_cpus": node.num_cpus, "max_restarts": 0}
    if node.wants_accelerator and self._has_gpu:
      options["num_gpus"] = 1
    elif node.on_cpu_host and self._has_gpu and self._cpu_hosts:
      from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
      host = self._cpu_hosts[self._next_cpu_host % len(self._cpu_hosts)]
      self._next_cpu_host += 1
      options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(host, soft=True)
    return options

  def _start(self, handle: Handle, incarnation: int = 0) -> None:
    ray = self._ray
    node = self._program.node(handle)
    name = Program.node_name(handle)
    args, kwargs = node.with_resolved(self.resolve, restarted=incarnation > 0)
    base = f"{self._base}/{name}"
    self._incarnations[handle] = incarnation  # before it starts: a failed start is not tried again under its name
    options = dict(self._options(handle), name=ray_actor_name(base, incarnation), namespace=RAY_NAMESPACE)
    actor = ray.remote(node.service_class).options(**options).remote(*args, **kwargs)
    try:
      ray.get(actor.ping.remote(), timeout=self._timeout_s)
    except ray.exceptions.GetTimeoutError:
      ray.kill(actor)
      raise NodeFailure(f"node '{name}' did not start within {self._timeout_s:.0f} s") from None
    except ray.exceptions.RayActorError as e:
      cause = e.__cause__ or e
      if isinstance(getattr(e, "cause", None), ConfigError):
        raise e.cause from None
      raise NodeFailure(f"node '{name}' failed to start: {str(cause).splitlines()[-1] if str(cause) else type(cause).__name__}") from None
    self.actors[handle] = actor
    self._proxies[handle] = RayProxy(actor, name, self._timeout_s, base, incarnation, RAY_NAMESPACE)
    self._runs[actor.run.remote()] = handle

  def resolve(self, handle: Handle) -> RayProxy:
    return self._proxies[handle]

  def poll(self) -> List[Tuple[Handle, str]]:
    ray = self._ray
    ready, _ = ray.wait(list(self._runs), num_returns=len(self._runs), timeout=0)
    failures = []
    for ref in ready:
      handle = self._runs.pop(ref)
      try:
        ray.get(ref, timeout=1)
      except Exception as e:
        failures.append((handle, f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"))
    return failures

  def restart(self, handle: Handle) -> None:
    """Starts the node again as its next incarnation (a new named actor) with its `restart_kwargs`."""
    try:
      self._ray.kill(self.actors[handle])
    except Exception:  # noqa: BLE001 — already gone
      pass
    for ref in [ref for ref, h in self._runs.items() if h == handle]:
      del self._runs[ref]
    self._start(handle, self._incarnations[handle] + 1)

  def stop(self) -> None:
    ray = self._ray
    for handle in reversed(self._program.handles()):
      try:
        ray.get(self.actors[handle].stop.remote(), timeout=self._timeout_s / 4)
      except Exception:
        pass
    if self._runs:
      ray.wait(list(self._runs), num_returns=len(self._runs), timeout=self._timeout_s / 4)

  def shutdown(self) -> None:
    for actor in self.actors.values():
      try:
        self._ray.kill(actor)
      except Exception:
        pass
    if self._started_ray:
      self._ray.shutdown()
      if self._reaper is not None:
        self._reaper.kill()
        self._reaper.wait(timeout=10)
        self._reaper = None
