"""Benchmarks: each module defines one `base.Benchmark`; `runner.run_benchmark` runs any of them.

Adding a benchmark is one module with a `BENCHMARK = MyBenchmark()` and one line in `BENCHMARKS` (a
module path, imported when its benchmark is asked for, or a `Benchmark` object).
"""

import argparse
import importlib

BENCHMARKS = {
    "atari100k": "repertory.benchmarks.atari100k",
    "control": "repertory.benchmarks.control",
    "device": "repertory.benchmarks.device",
    "faults": "repertory.benchmarks.faults",
    "memory": "repertory.benchmarks.memory",
    "plasticity": "repertory.benchmarks.plasticity",
    "throughput": "repertory.benchmarks.throughput",
}


def benchmark_names():
  return tuple(BENCHMARKS)


def get_benchmark(name: str):
  """The `Benchmark` registered as `name`."""
  from repertory.errors import ConfigError
  if name not in BENCHMARKS:
    raise ConfigError(f"unknown benchmark '{name}'; choose one of {', '.join(BENCHMARKS)}")
  entry = BENCHMARKS[name]
  return importlib.import_module(entry).BENCHMARK if isinstance(entry, str) else entry


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
  """Flag defaults in --help, the benchmark's description as written."""


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
  """`repertory bench <name>`: the benchmark's own flags and the runner's."""
  from repertory.benchmarks.runner import add_runner_arguments
  benchmark = get_benchmark(name)
  parser = subparsers.add_parser(name, help=benchmark.help, description=benchmark.description,
                                 formatter_class=_HelpFormatter)
  benchmark.add_arguments(parser)
  add_runner_arguments(parser, benchmark)
  return parser
