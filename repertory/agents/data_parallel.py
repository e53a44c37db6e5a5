"""Data parallelism for every learner: a `Mesh` over local devices with one `data` axis.

Parameters and optimiser state are replicated; each batch is placed split along its batch axis
(`jax.device_put` with a `NamedSharding`), and the update is one `jax.jit` with these shardings as its
in/out shardings, so XLA inserts the all-reduce of the gradients (a mean over the global batch is the
same computation on any number of devices). No `pmap`.

`--learner-devices`: "auto" (all accelerators; 1 on CPU, where XLA's own threads already use the cores),
"all" (every local device, CPU included), or a number N (the first N local devices). JAX is imported
only when devices are chosen, so that checking a setting is free.

Several learner processes (after `jax.distributed.initialize`) form one program: the mesh spans the chosen
devices of every process, each process feeds its share of the global batch (`local_batch_size` rows,
`jax.make_array_from_process_local_data`), and reads back only its own rows of per-example outputs
(`local`).
"""

import dataclasses
from typing import Any, Optional, Sequence

from repertory.errors import ConfigError

AXIS = "data"
SETTINGS = ("auto", "all")


def check_setting(setting: str, batch_size: int) -> None:
  """One line for a setting that is neither "auto", "all" nor a positive number, or that does not divide
  the batch; needs no device."""
  if setting in SETTINGS:
    return
  if not str(setting).isdigit() or int(setting) < 1:
    raise ConfigError(f"--learner-devices must be auto, all or a number >= 1, got '{setting}'")
  if batch_size % int(setting):
    raise ConfigError(f"--learner-devices {setting} does not divide the batch size {batch_size}; choose a divisor "
                      "of batch_size or set batch_size with --config")


def resolve_devices(setting: str, batch_size: int) -> Sequence[Any]:
  """The local devices a learner with this setting uses; one line when there are fewer than asked, or when
  their number does not divide the batch."""
  import jax
  check_setting(setting, batch_size)
  devices = jax.local_devices()
  if setting == "auto":
    chosen = devices if devices[0].platform != "cpu" else devices[:1]
  elif setting == "all":
    chosen = devices
  elif int(setting) > len(devices):
    raise ConfigError(f"--learner-devices {setting} asks for more devices than the {len(devices)} "
                      f"{devices[0].platform} device(s) here; use at most {len(devices)} (or auto)")
  else:
    chosen = devices[:int(setting)]
  total = len(chosen) * jax.process_count()
  if batch_size % total:
    raise ConfigError(f"--learner-devices {setting} means {total} devices, which do not divide the batch size "
                      f"{batch_size}; choose a number of devices that does")
  if jax.process_count() == 1:
    return chosen
  per_process = len(chosen)  # the same on every process: the first `per_process` devices of each
  return [d for p in range(jax.process_count())
          for d in sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)[:per_process]]


@dataclasses.dataclass(frozen=True)
class DataParallel:
  """Where a learner's state and batches live; `DataParallel.create()` is one default device."""
  mesh: Any  # jax.sharding.Mesh with the one axis AXIS

  @classmethod
  def create(cls, setting: str = "1", batch_size: int = 1,
             devices: Optional[Sequence[Any]] = None) -> "DataParallel":
    import numpy as np
    from jax.sharding import Mesh
    chosen = list(devices) if devices is not None else resolve_devices(setting, batch_size)
    return cls(Mesh(np.array(chosen), (AXIS,)))

  @property
  def num_devices(self) -> int:
    return self.mesh.devices.size

  @property
  def num_processes(self) -> int:
    return len({d.process_index for d in self.mesh.devices.flat})

  def local_batch_size(self, batch_size: int) -> int:
    """The rows of each global batch that this process samples and feeds."""
    return batch_size // self.num_processes

  @property
  def replicated(self) -> Any:
    """A `NamedSharding`: a whole copy on every device."""
    return self.batch(axis=None)

  def batch(self, axis: Optional[int] = 0) -> Any:
    """A `NamedSharding` split along `axis` (the batch axis), whole along every other."""
    from jax.sharding import NamedSharding, PartitionSpec
    return NamedSharding(self.mesh, PartitionSpec() if axis is None else PartitionSpec(*([None] * axis), AXIS))

  def replicate(self, tree: Any) -> Any:
    """A whole copy of `tree` on every device (every process passes the same values)."""
    import jax
    import numpy as np
    if self.num_processes == 1:
      return jax.device_put(tree, self.replicated)
    def whole(x):
      x = np.asarray(x)
      return jax.make_array_from_callback(x.shape, self.replicated, lambda index: x[index])
    return jax.tree.map(whole, tree)

  def shard(self, tree: Any, axis: int = 0) -> Any:
    """Every leaf split along `axis` over the devices; each process passes its own rows (all of them when
    there is one process), with a length its devices divide."""
    import jax
    if self.num_processes == 1:
      return jax.device_put(tree, self.batch(axis))
    import numpy as np
    sharding = self.batch(axis)
    def split(x):  # a host array holds this process's rows; a device array is already global
      if isinstance(x, jax.Array):
        return jax.device_put(x, sharding)
      return jax.make_array_from_process_local_data(sharding, np.asarray(x))
    return jax.tree.map(split, tree)

  def local(self, x: Any, axis: int = 0) -> Any:
    """This process's rows (along `axis`) of an array split by `batch(axis)`, as numpy, in the order it fed them."""
    import numpy as np
    if self.num_processes == 1:
      return np.asarray(x)
    shards = sorted(x.addressable_shards, key=lambda shard: shard.index[axis].start or 0)
    return np.concatenate([np.asarray(shard.data) for shard in shards], axis=axis)
