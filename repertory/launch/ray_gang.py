"""Nodes that start, live and restart together on distinct hosts of a Ray cluster: the processes of a
multi-host learner (`Node.gang`). A placement group with one bundle per process (STRICT_SPREAD) puts each on
its own accelerator host; bundle 0's host picks the coordinator's port."""

from typing import Any

from repertory.launch.launchers import NodeFailure
from repertory.launch.ray_cluster import check_learner_hosts


def _free_address() -> str:
  import socket
  import ray
  with socket.socket() as s:
    s.bind(("", 0))
    port = s.getsockname()[1]
  return f"{ray.util.get_node_ip_address()}:{port}"


class Gang:
  """A placement group for `size` processes of `num_cpus` (and one GPU each when `with_gpu`)."""

  def __init__(self, size: int, num_cpus: float, with_gpu: bool, timeout_s: float):
    import ray
    from ray.util.placement_group import placement_group
    check_learner_hosts(size)
    bundle = {"CPU": num_cpus, **({"GPU": 1} if with_gpu else {})}
    self.group = placement_group([dict(bundle) for _ in range(size)], strategy="STRICT_SPREAD")
    try:
      ray.get(self.group.ready(), timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
      self.remove()
      raise NodeFailure(f"the {size} learner processes could not be placed on {size} distinct hosts within "
                        f"{timeout_s:.0f} s (each needs {bundle}); free those resources or pass fewer --learner-hosts") from None

  def strategy(self, process_id: int) -> Any:
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
    return PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=process_id)

  def coordinator_address(self, timeout_s: float) -> str:
    """host:port free on process 0's host (asked there, just before the processes start)."""
    import ray
    task = ray.remote(_free_address).options(num_cpus=0, scheduling_strategy=self.strategy(0))
    return ray.get(task.remote(), timeout=timeout_s)

  def remove(self) -> None:
    from ray.util import remove_placement_group
    try:
      remove_placement_group(self.group)
    except Exception:  # noqa: BLE001 — already gone with the cluster
      pass
