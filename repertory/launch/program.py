"""Programs as graphs of nodes joined by handles (Launchpad's programming model, run on threads or Ray).

A `Node` names a service class and its constructor arguments; arguments may hold `Handle`s to
other nodes, which each launcher resolves to something callable in the same way: the service
object itself (thread) or a proxy that forwards method calls to a Ray actor (ray).
"""

import dataclasses
from typing import Any, Dict, List, Tuple


@dataclasses.dataclass(frozen=True)
class Handle:
  """A reference to a node, resolved by the launcher."""

  label: str
  index: int


@dataclasses.dataclass
class Node:
  """A service to construct: `service_class(*args, **kwargs)`; it may define `run()` and `stop()`."""

  service_class: type
  args: Tuple[Any, ...] = ()
  kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
  # Launch hints: the learner asks for an accelerator when the cluster has one.
  wants_accelerator: bool = False
  on_cpu_host: bool = False  # actors: placed on hosts without accelerators when the cluster has both
  num_cpus: float = 1.0
  restart_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)  # replace kwargs when restarted
  # Nodes of one gang (a multi-host learner's processes) start, live and restart together, one per host; the
  # `ray` launcher passes each a `coordinator_address` (host:port on the first one's host).
  gang: str = ""

  def with_resolved(self, resolve, restarted: bool = False) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
    """The constructor's arguments with handles resolved; a restarted node gets `restart_kwargs` too."""
    fix = lambda v: resolve(v) if isinstance(v, Handle) else v
    kwargs = dict(self.kwargs, **self.restart_kwargs) if restarted else self.kwargs
    return tuple(fix(a) for a in self.args), {k: fix(v) for k, v in kwargs.items()}


class Program:
  """Nodes grouped by label, in the order they must start (a node may only refer to earlier ones)."""

  def __init__(self, name: str):
    self.name = name
    self.groups: Dict[str, List[Node]] = {}
    self._order: List[Handle] = []

  def add_node(self, node: Node, label: str) -> Handle:
    for value in list(node.args) + list(node.kwargs.values()):
      if isinstance(value, Handle) and value not in self._order:
        raise ValueError(f"node '{label}' refers to '{value.label}', which is not in the program yet")
    group = self.groups.setdefault(label, [])
    group.append(node)
    handle = Handle(label, len(group) - 1)
    self._order.append(handle)
    return handle

  def handles(self) -> List[Handle]:
    return list(self._order)

  def node(self, handle: Handle) -> Node:
    return self.groups[handle.label][handle.index]

  @staticmethod
  def node_name(handle: Handle) -> str:
    return handle.label if handle.index == 0 and handle.label != "actor" else f"{handle.label}_{handle.index}"
