"""Evaluation curves of finished runs, the table that the curve plots and final-score tables read."""

import os
from typing import Sequence


def evaluation_curves(runs: Sequence) -> "pandas.DataFrame":
  """DataFrame(variant, seed, step, return) of every run's evaluator rows (`base.Run`s labelled with variant
  and seed; step = actor steps). A step evaluated twice keeps its last row."""
  import pandas as pd
  from repertory.utils.loggers import read_metrics
  rows = []
  for run in runs:
    path = os.path.join(run.run_dir, "metrics.csv")
    if not os.path.exists(path):
      continue
    for row in read_metrics(path, "evaluator"):
      if row.get("episode_return") not in (None, ""):
        rows.append({"variant": run.labels["variant"], "seed": run.labels["seed"], "step": int(float(row["actor_steps"])),
                     "return": float(row["episode_return"])})
  frame = pd.DataFrame(rows, columns=["variant", "seed", "step", "return"])
  return frame.drop_duplicates(["variant", "seed", "step"], keep="last").sort_values(["variant", "seed", "step"],
                                                                                       ignore_index=True)
