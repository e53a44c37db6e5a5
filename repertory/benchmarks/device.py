"""`repertory bench device`: what one accelerator host gives a learner, in one command of under 10 minutes.

  a. DER (batch 32, Pong) and IMPALA (32 sequences × 20 steps, Nature CNN + LSTM) update times on one device;
  b. learner updates/s and samples/s against the number of devices (1, 2, 4, … all), the batch per
     device fixed at the default, with the scaling efficiency samples/s(n) / (n · samples/s(1));
  c. a short `sync` DER run on Pong (wall clock and steps/s, from the run's own status).
Writes device.csv, device.png and provenance.json (device name, machine, commit, date, settings) to --out.
Without an accelerator it refuses unless `--quick`, the reduced CPU mode the tests run (small batches,
1 s per measurement, a 300-step run). `benchmarks/device_check.sh` installs what is missing on a bare
GPU host from carried wheels and runs this.
"""

import argparse
import dataclasses
import os
from typing import Any, Dict, List

from repertory.benchmarks.base import Benchmark, Plan, Run
from repertory.benchmarks.throughput import Results, atari_spec, learner_rate
from repertory.errors import ConfigError
from repertory.utils.timing import RUN_PHASES

GAME = "Pong"
UPDATES = {  # agent → (overrides at full size, overrides in --quick mode)
    "der": ({}, {"batch_size": "8"}),
    "impala": ({}, {"batch_size": "4", "unroll_length": "5"}),
}


def device_counts(available: int) -> List[int]:
  """1, 2, 4, … up to `available`, and `available` itself."""
  counts, n = [], 1
  while n < available:
    counts.append(n)
    n *= 2
  return counts + [available]


def measure_updates(results: Results, quick: bool, seconds: float) -> None:
  import jax
  spec = atari_spec(GAME)
  device = jax.devices()[0]
  for agent, (full, reduced) in UPDATES.items():
    rate, batch = learner_rate(agent, spec, seconds, reduced if quick else full)
    shape = f"{batch} × {reduced.get('unroll_length', 20) if quick else 20}" if agent == "impala" else str(batch)
    results.add("update", f"{agent}: time per update", 1000 / rate, "ms", f"batch {shape}; {device.device_kind}")


def measure_scaling(results: Results, quick: bool, seconds: float) -> None:
  import jax
  from repertory.agents.data_parallel import DataParallel
  spec = atari_spec(GAME)
  per_device = int(UPDATES["der"][1].get("batch_size", 32)) if quick else 32
  single = None
  for n in device_counts(len(jax.local_devices())):
    devices = DataParallel.create(devices=jax.local_devices()[:n])
    rate, batch = learner_rate("der", spec, seconds, {"batch_size": str(per_device * n)}, devices)
    samples = rate * batch
    single = single or samples
    results.add("scaling", f"der on {n} device(s): updates/s", rate, "updates/s", f"global batch {batch}")
    results.add("scaling", f"der on {n} device(s): efficiency", samples / (n * single), "ratio",
                f"{samples:,.0f} samples/s; goal >= 0.8")


def sync_run(out: str, steps: int) -> Run:
  from repertory.launch.experiment import ExperimentConfig
  run_dir = os.path.join(out, "runs", "der_sync")
  overrides = (("min_replay_size", "100"),) if steps < 2_000 else ()
  experiment = ExperimentConfig(agent="der", env=f"atari:{GAME}", run_dir=run_dir, launcher="sync",
                                max_actor_steps=steps, eval_every=steps, eval_episodes=1, progress=False,
                                agent_overrides=overrides)
  return Run(f"DER sync on {GAME}", run_dir, experiment, {"steps": steps})


@dataclasses.dataclass
class _Measurement:
  results: Results
  device: Dict[str, Any]


class DeviceCheck(Benchmark):
  name = "device"
  help = "update times, multi-device scaling and a short DER run on an accelerator host"
  description = __doc__
  record_file = "provenance.json"
  reuse_finished = False

  def add_arguments(self, p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per rate measurement")
    p.add_argument("--sync-steps", type=int, default=5_000, help="actor steps of the short sync DER run (0 skips it)")
    p.add_argument("--quick", action="store_true", help="reduced mode, also on CPU: small batches, 1 s per "
                   "measurement, a 300-step run")

  def settings(self, record):
    return {k: record.get(k) for k in ("seconds", "sync_steps", "quick")}

  def plan(self, args: argparse.Namespace) -> Plan:
    import jax
    if args.report_only:
      raise ConfigError("--report-only: the device check measures the host as it runs; run it without --report-only")
    if args.quick:
      args.seconds, args.sync_steps = 1.0, min(args.sync_steps, 300)
    if args.seconds <= 0 or args.sync_steps < 0:
      raise ConfigError("--seconds must be > 0 and --sync-steps >= 0")
    device = jax.devices()[0]
    if device.platform == "cpu" and not args.quick:
      raise ConfigError("no accelerator here (JAX sees only CPU devices); run on a GPU/TPU host, or pass --quick for "
                        "the reduced CPU check")
    record = {"seconds": args.seconds, "sync_steps": args.sync_steps, "quick": args.quick,
              "device": device.device_kind, "platform": device.platform, "devices": len(jax.local_devices())}
    runs = (sync_run(args.out, args.sync_steps),) if args.sync_steps else ()
    return Plan(record, runs, context=_Measurement(Results(), record))

  def measure(self, args: argparse.Namespace, plan: Plan) -> None:
    from repertory.utils.provenance import provenance
    info, device = provenance(), plan.context.device
    print(f"device check on {device['devices']} × {device['device']} ({info['machine']}, commit {info['commit']})",
          flush=True)
    measure_updates(plan.context.results, args.quick, args.seconds)
    measure_scaling(plan.context.results, args.quick, args.seconds)

  def report(self, args, plan: Plan, finished, missing, wall_clock_s: float) -> List[str]:
    from repertory.benchmarks.throughput import write_rows
    from repertory.launch.training import read_status
    results = plan.context.results
    for run in finished:
      status = read_status(run.run_dir) or {}
      results.add("sync", f"DER sync run, {run.labels['steps']:,} steps: wall clock", status.get("wall_clock_s", 0.0), "s",
                  f"final evaluation {status.get('final_evaluation_return')}")
      wall = max(float(status.get("wall_clock_s", 0.0)), 1e-9)
      results.add("sync", "DER sync run: actor steps/s", float(status.get("actor_steps", 0)) / wall, "steps/s",
                  f"{status.get('learner_steps')} updates; the whole run, compilation included")
      for phase in RUN_PHASES:  # where its time went
        results.add("sync", f"DER sync run: {phase}", float(status.get(f"{phase}_s", 0.0)), "s",
                    "wall-clock of the phase, compilation included")
    return write_rows(args.out, "device", results.rows, plan.record)


BENCHMARK = DeviceCheck()
