"""The `ray` launch type: each node of a `Program` a named Ray actor (its own process), reached through
`RayProxy` handles that follow a restarted node to its next incarnation; gangs of nodes started together
(`ray_gang.py`); attaching to a cluster is in `ray_cluster.py`."""

import os
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

from repertory.errors import ConfigError
from repertory.launch.launchers import NodeFailure
from repertory.launch.program import Handle, Program
from repertory.launch.ray_cluster import attach_ray, check_cluster_cpus, start_local_ray


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
        start_local_ray(num_cpus)
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
    self._gangs: Dict[str, Any] = {}  # gang name -> ray_gang.Gang
    try:
      for handle in program.handles():
        gang = program.node(handle).gang
        if not gang:
          self._start(handle)
        elif gang not in self._gangs:
          self._start_gang(gang, 0)
    except BaseException:
      self.shutdown()
      raise

  def _members(self, gang: str) -> List[Handle]:
    return [h for h in self._program.handles() if self._program.node(h).gang == gang]

  def _start_gang(self, gang: str, incarnation: int) -> None:
    """Starts every node of `gang` at once (each waits in its constructor for the others), one per host."""
    from repertory.launch.ray_gang import Gang
    members = self._members(gang)
    if gang not in self._gangs:
      first = self._program.node(members[0])
      self._gangs[gang] = Gang(len(members), first.num_cpus, first.wants_accelerator and self._has_gpu, self._timeout_s)
    address = self._gangs[gang].coordinator_address(self._timeout_s)
    actors = [self._create(h, incarnation, {"coordinator_address": address}) for h in members]
    try:
      for handle, actor in zip(members, actors):
        self._await(handle, actor, incarnation)
    except BaseException:
      for actor in actors:  # the others would wait for the one that failed
        self._ray.kill(actor)
      raise

  def _options(self, handle: Handle, incarnation: int = 0) -> Dict[str, Any]:
    node = self._program.node(handle)
    options: Dict[str, Any] = {"max_concurrency": 8, "num_cpus": node.num_cpus, "max_restarts": 0}
    if node.wants_accelerator and self._has_gpu:
      options["num_gpus"] = 1
    if node.gang:
      options["scheduling_strategy"] = self._gangs[node.gang].strategy(self._members(node.gang).index(handle))
    elif node.on_cpu_host and self._has_gpu and self._cpu_hosts:
      from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
      host = self._cpu_hosts[self._next_cpu_host % len(self._cpu_hosts)]
      self._next_cpu_host += 1
      # Hard at the first start (the host is alive; a soft affinity fell back to the head once Ray's
      # raylets lagged behind a joined host), soft for a restart, whose host may be the one that died.
      options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(host, soft=incarnation > 0)
    return options

  def _start(self, handle: Handle, incarnation: int = 0) -> None:
    self._await(handle, self._create(handle, incarnation), incarnation)

  def _create(self, handle: Handle, incarnation: int, extra_kwargs: Optional[Dict[str, Any]] = None) -> Any:
    node = self._program.node(handle)
    args, kwargs = node.with_resolved(self.resolve, restarted=incarnation > 0)
    base = f"{self._base}/{Program.node_name(handle)}"
    self._incarnations[handle] = incarnation  # before it starts: a failed start is not tried again under its name
    options = dict(self._options(handle, incarnation), name=ray_actor_name(base, incarnation), namespace=RAY_NAMESPACE)
    return self._ray.remote(node.service_class).options(**options).remote(*args, **kwargs, **(extra_kwargs or {}))

  def _await(self, handle: Handle, actor: Any, incarnation: int) -> None:
    """Waits for a created actor's constructor; then it is the node's current incarnation."""
    ray = self._ray
    name = Program.node_name(handle)
    base = f"{self._base}/{name}"
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
      handle = self._runs.pop(ref, None)
      if handle is None:  # a gang member whose gang already failed in this poll
        continue
      try:
        ray.get(ref, timeout=1)
      except Exception as e:
        gang = self._program.node(handle).gang
        if gang:  # the whole gang restarts, as its first node
          handle = self._members(gang)[0]
          for other in [r for r, h in self._runs.items() if self._program.node(h).gang == gang]:
            del self._runs[other]
        failures.append((handle, f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"))
    return failures

  def restart(self, handle: Handle) -> None:
    """Starts the node (all of its gang) again as its next incarnation (a new named actor) with its
    `restart_kwargs`."""
    gang = self._program.node(handle).gang
    handles = self._members(gang) if gang else [handle]
    for member in handles:
      try:
        self._ray.kill(self.actors[member])
      except Exception:  # noqa: BLE001 — already gone (or never started)
        pass
    for ref in [ref for ref, h in self._runs.items() if h in handles]:
      del self._runs[ref]
    if gang:
      self._start_gang(gang, self._incarnations[handle] + 1)
    else:
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
    for gang in self._gangs.values():
      gang.remove()
    if self._started_ray:
      self._ray.shutdown()
      if self._reaper is not None:
        self._reaper.kill()
        self._reaper.wait(timeout=10)
        self._reaper = None
