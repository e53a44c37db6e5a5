"""The --out guard and the test of whether a run dir already holds a finished run of this configuration."""

import dataclasses
import json
import os
from typing import Any, Dict, List

from repertory.errors import ConfigError
from repertory.launch.training import read_status

# config.json fields that decide a run's result (run_dir, progress, timeouts and addresses do not).
RESULT_FIELDS = ("agent", "env", "launcher", "seed", "max_actor_steps", "envs_per_actor", "eval_every",
                 "eval_episodes", "eval_envs", "agent_config")
# Fields added after results were recorded, with the value those results had: one evaluation environment.
ADDED_FIELDS = {"eval_envs": 1}


def normalised(value: Any) -> Any:
  """`value` as it reads back from JSON (tuples become lists, unknown objects strings)."""
  return json.loads(json.dumps(value, default=str, sort_keys=True))


def _flatten(record: Any, prefix: str = "") -> Dict[str, Any]:
  if not isinstance(record, dict):
    return {prefix: record}
  flat = {}
  for key, value in record.items():
    flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
  return flat


def differences(saved: Dict[str, Any], wanted: Dict[str, Any]) -> List[str]:
  """'key: <saved> there vs <wanted> now' for every (dotted) key whose values differ.

  An agent config field missing from `saved` is not a difference: it was added to the agent after the run
  was recorded, and the record's overrides (compared as well) show it was left at its default. A field of
  `ADDED_FIELDS` missing on either side has the value it had before it existed.
  """
  saved, wanted = _flatten(normalised(saved)), _flatten(normalised(wanted))
  found = []
  for key in sorted(set(saved) | set(wanted)):
    if key not in saved and ".agent_config." in f".{key}":
      continue
    there, now = saved.get(key, ADDED_FIELDS.get(key)), wanted.get(key, ADDED_FIELDS.get(key))
    if there != now:
      found.append(f"{key}: {there!r} there vs {now!r} now")
  return found


def read_json(path: str, what: str) -> Dict[str, Any]:
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, ValueError) as e:
    raise ConfigError(f"'{path}' is not a readable {what} ({type(e).__name__}); restore it or choose another --out") from None
  if not isinstance(record, dict):
    raise ConfigError(f"'{path}' is not a readable {what} (not a JSON object); restore it or choose another --out")
  return record


def check_out(out: str, benchmark, record: Dict[str, Any]) -> None:
  """Refuses an --out that holds another configuration's results or unrelated files; records this one."""
  path = os.path.join(out, benchmark.record_file)
  if os.path.exists(path):
    saved = read_json(path, f"{benchmark.name} benchmark record")
    found = differences(benchmark.settings(saved), benchmark.settings(record))
    if found:
      more = f"; and {len(found) - 3} more" if len(found) > 3 else ""
      raise ConfigError(f"--out '{out}' holds results of a different configuration of the {benchmark.name} benchmark "
                        f"({'; '.join(found[:3])}{more}); choose another --out or repeat its settings")
    return
  if os.path.exists(out) and not os.path.isdir(out):
    raise ConfigError(f"--out '{out}' is a file, not a folder; choose another --out")
  if os.path.isdir(out) and os.listdir(out):
    raise ConfigError(f"--out '{out}' is not empty and holds no {benchmark.record_file}; choose an empty or new folder")
  try:
    os.makedirs(out, exist_ok=True)
  except OSError as e:
    raise ConfigError(f"cannot create --out '{out}' ({e.strerror}); choose another --out") from None
  with open(path, "w") as f:
    json.dump(record, f, indent=2, default=str)


def run_record(experiment) -> Dict[str, Any]:
  """The config.json that `experiment.save` writes, without the environment spec."""
  record = dataclasses.asdict(experiment)
  record["agent_config"] = dataclasses.asdict(experiment.make_builder().config)
  return normalised(record)


def same_run(benchmark, run) -> bool:
  """Whether the run dir's config.json is this run's configuration (in the fields that decide its result)."""
  try:
    with open(os.path.join(run.run_dir, "config.json")) as f:
      saved = benchmark.saved_run_config(json.load(f))
  except (OSError, ValueError, TypeError, AttributeError):
    return False
  wanted = run_record(run.experiment)
  fields = RESULT_FIELDS + (("num_actors",) if wanted["launcher"] != "sync" else ())  # sync has one actor
  pick = lambda record: {k: record[k] for k in fields if k in record}
  return not differences(pick(saved), pick(wanted))


def is_finished(benchmark, run) -> bool:
  """status.json says finished and config.json is this run's configuration."""
  status = read_status(run.run_dir)
  return status is not None and status.get("status") == "finished" and same_run(benchmark, run)
