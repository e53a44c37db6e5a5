"""The reports of `repertory bench plasticity` over its finished runs (tables and plots; see its docstring)."""

import os
from typing import List, Sequence

import numpy as np
import pandas as pd

DIAGNOSTICS = ("srank", "probe_loss", "dormant")
LABELS = {"srank": "effective rank srank of the penultimate features", "probe_loss": "plasticity probe loss",
          "dormant": "dormant fraction (mean over layers)"}


def episode_curves(runs: Sequence, bins: int, steps: int) -> pd.DataFrame:
  """DataFrame(variant, seed, step, return): each run's actor episode returns, averaged in `bins` equal bins
  of actor steps (step = the bin's end)."""
  from repertory.utils.loggers import read_metrics
  width = max(1, steps // bins)
  rows = []
  for run in runs:
    path = os.path.join(run.run_dir, "metrics.csv")
    if not os.path.exists(path):
      continue
    episodes = [(int(float(r["actor_steps"])), float(r["episode_return"])) for r in read_metrics(path, "actor")
                if r.get("episode_return") not in (None, "") and r.get("actor_steps") not in (None, "")]
    frame = pd.DataFrame(episodes, columns=["step", "return"])
    if frame.empty:
      continue
    frame["bin"] = np.minimum((frame["step"] - 1) // width, bins - 1)
    for index, group in frame.groupby("bin"):
      rows.append({"variant": run.labels["variant"], "seed": run.labels["seed"], "step": int((index + 1) * width),
                   "return": float(group["return"].mean())})
  return pd.DataFrame(rows, columns=["variant", "seed", "step", "return"])


def diagnostics_table(runs: Sequence) -> pd.DataFrame:
  """DataFrame(variant, seed, learner_steps, srank, probe_loss, dormant) from each run's diagnostics rows;
  dormant is the mean over the layers' dormant fractions."""
  from repertory.utils.loggers import read_metrics
  rows = []
  for run in runs:
    path = os.path.join(run.run_dir, "metrics.csv")
    if not os.path.exists(path):
      continue
    for r in read_metrics(path, "diagnostics"):
      dormant = [float(v) for k, v in r.items() if k.startswith("dormant/") and v not in (None, "")]
      rows.append({"variant": run.labels["variant"], "seed": run.labels["seed"],
                   "learner_steps": int(float(r["learner_steps"])), "srank": float(r["srank"]),
                   "probe_loss": float(r["probe_loss"]), "dormant": float(np.mean(dormant)) if dormant else np.nan})
  return pd.DataFrame(rows, columns=["variant", "seed", "learner_steps", *DIAGNOSTICS])


def write_reports(out: str, settings, finished: Sequence) -> List[str]:
  from repertory.benchmarks.plasticity import BINS, is_game_sequence, task_changes
  from repertory.utils import final_scores, plotting, scores
  written = []
  curves = episode_curves(finished, BINS, settings.steps)
  written.append(os.path.join(out, "curves.csv"))
  curves.to_csv(written[-1], index=False)
  change = "the next game" if is_game_sequence(settings.env) else "observations permuted"
  title = f"{settings.agent} on {settings.env}, {change} every {settings.permute_every:,} steps: episode return"
  written.append(plotting.plot_curves_with_ci(curves, os.path.join(out, "curves.png"), title=title,
                                              xlabel="actor steps", marks=task_changes(settings)))
  diagnostics = diagnostics_table(finished)
  written.append(os.path.join(out, "diagnostics.csv"))
  diagnostics.to_csv(written[-1], index=False)
  for name in DIAGNOSTICS:
    table = diagnostics.rename(columns={"learner_steps": "step"})[["variant", "seed", "step", name]].dropna()
    written.append(plotting.plot_curves_with_ci(table, os.path.join(out, f"{name}.png"), title=LABELS[name],
                                                value=name, xlabel="learner updates"))
  if not curves.empty:
    table = final_scores.final_score_table(curves)
    table.to_csv(os.path.join(out, "final_scores.csv"), index=False)
    with open(os.path.join(out, "final_scores.md"), "w") as f:
      f.write(scores.to_markdown(table, floatfmt=".1f", index=False) + "\n")
    written += [os.path.join(out, "final_scores.csv"), os.path.join(out, "final_scores.md")]
  return written
