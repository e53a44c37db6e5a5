"""`repertory` command line: `train` an agent, `bench` a benchmark (the registry in `repertory.benchmarks`)."""

import argparse
import sys
from typing import List, Optional

from repertory.errors import ConfigError

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1


def make_parser() -> argparse.ArgumentParser:
  from repertory import benchmarks
  from repertory.launch import train_command
  parser = argparse.ArgumentParser(prog="repertory", description="A distributed reinforcement-learning agent platform.")
  subparsers = parser.add_subparsers(dest="command", required=True)
  train_command.add_parser(subparsers)
  bench = subparsers.add_parser("bench", help="run a benchmark", description="Benchmarks with results written as CSV + PNG.")
  bench_commands = bench.add_subparsers(dest="benchmark", required=True)
  for name in benchmarks.benchmark_names():
    benchmarks.add_parser(bench_commands, name)
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  from repertory.launch.lifetime import die_with_parent_if_asked
  from repertory.launch.lifetime import Terminated
  die_with_parent_if_asked()
  args = make_parser().parse_args(argv)
  from repertory.launch.launchers import NodeFailure
  try:
    if args.command == "train":
      from repertory.launch.train_command import train
      return train(args)
    from repertory.benchmarks.runner import run_benchmark
    return run_benchmark(args)
  except ConfigError as e:
    print(f"repertory: error: {e}", file=sys.stderr)
    return EXIT_BAD_INPUT
  except NodeFailure as e:
    print(f"repertory: run failed: {e}", file=sys.stderr)
    return EXIT_RUN_FAILED
  except KeyboardInterrupt as e:
    if args.command != "train":  # a benchmark goes on when its command is run again
      print("repertory: interrupted", file=sys.stderr)
      return 130
    print(f"repertory: interrupted ({'SIGTERM' if isinstance(e, Terminated) else 'SIGINT'}); "
          "resume with the same command and --resume", file=sys.stderr)
    return 143 if isinstance(e, Terminated) else 130


if __name__ == "__main__":
  sys.exit(main())
