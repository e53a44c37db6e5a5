"""Replay table configurations, validated before any server starts."""

import dataclasses
from typing import Optional

from repertory.errors import ConfigError

SAMPLERS = ("prioritized", "uniform", "fifo")


@dataclasses.dataclass(frozen=True)
class TableConfig:
  """One replay table.

  Attributes:
    name: table name.
    sampler: "prioritized" (proportional, Schaul et al. 2016), "uniform" or "fifo" (a queue: every
      item is sampled exactly once, as IMPALA's learner consumes its actors' unrolls).
    max_size: capacity; the oldest item is removed first.
    min_size_to_sample: sampling waits until the table holds this many items.
    samples_per_insert: the replay ratio kept by the rate limiter (each item's expected number of
      samples); None lets actors insert freely (only the min-size limit applies). Not for "fifo".
    samples_per_insert_tolerance: how far, in samples, the ratio may drift before the faster side
      blocks (Reverb's `error_buffer`).
    priority_exponent: α of prioritized replay (Schaul et al. 2016, eq. 1).
    deduplicate_frames: the native table keeps each frame of stacked-frame leaves (uint8 [H, W, K]) once
      and rebuilds the stacks when sampling (Atari: about 7.5 KB per transition instead of 56 KB).
  """

  name: str = "replay"
  sampler: str = "prioritized"
  max_size: int = 100_000
  min_size_to_sample: int = 1_000
  samples_per_insert: Optional[float] = None
  samples_per_insert_tolerance: Optional[float] = None
  priority_exponent: float = 0.6
  deduplicate_frames: bool = False

  @property
  def error_buffer(self) -> float:
    """Reverb's error buffer: the tolerance, or enough for one batch of work either way."""
    if self.samples_per_insert_tolerance is not None:
      return float(self.samples_per_insert_tolerance)
    return max(2.0 * max(1.0, self.samples_per_insert or 1.0), 0.1 * self.min_size_to_sample * (self.samples_per_insert or 1.0))


def validate_table_config(config: TableConfig, batch_size: int) -> TableConfig:
  """Rejects configurations that would deadlock or could never sample, with one clear line."""
  where = f"replay table '{config.name}'"
  if config.sampler not in SAMPLERS:
    raise ConfigError(f"{where}: unknown sampler '{config.sampler}'; choose one of {', '.join(SAMPLERS)}")
  if batch_size < 1:
    raise ConfigError(f"{where}: batch size must be >= 1, got {batch_size}")
  if config.min_size_to_sample < 1:
    raise ConfigError(f"{where}: min_size_to_sample must be >= 1, got {config.min_size_to_sample}")
  if config.max_size < config.min_size_to_sample:
    raise ConfigError(
        f"{where} can never be sampled: max_size {config.max_size} < min_size_to_sample "
        f"{config.min_size_to_sample}; raise max_size or lower the minimum")
  if config.max_size < batch_size:
    raise ConfigError(f"{where} can never fill a batch: max_size {config.max_size} < batch size {batch_size}")
  if config.sampler == "fifo":
    if config.samples_per_insert is not None:
      raise ConfigError(f"{where}: a fifo queue samples every item once; leave samples_per_insert unset")
    if config.min_size_to_sample > batch_size and config.max_size < config.min_size_to_sample + batch_size:
      raise ConfigError(f"{where}: queue too small to hold the minimum plus one batch; raise max_size")
    return config
  if config.samples_per_insert is not None:
    spi = config.samples_per_insert
    if spi <= 0:
      raise ConfigError(f"{where}: samples_per_insert must be > 0, got {spi}")
    if config.error_buffer < max(1.0, spi):
      raise ConfigError(
          f"{where}: samples_per_insert_tolerance {config.error_buffer} < max(1, samples_per_insert={spi}) "
          "would block inserts and samples for good; raise the tolerance")
  if not 0.0 <= config.priority_exponent <= 1.0:
    raise ConfigError(f"{where}: priority_exponent must be in [0, 1], got {config.priority_exponent}")
  return config
