"""Final scores of non-Atari benchmarks (memory tasks, control): the mean return of the last fraction of
each run, and per variant the mean over seeds with a percentile bootstrap CI over seeds (rliable's
stratified bootstrap with one task, Agarwal et al. 2021, arXiv 2108.13264).
"""

import math

import numpy as np
import pandas as pd

from repertory.errors import ConfigError
from repertory.utils.scores import interval_estimates, require_columns

def final_scores(curves: pd.DataFrame, last_fraction: float = 0.1, value: str = "return") -> pd.DataFrame:
  """Per (variant, seed): mean of `value` over the rows with step >= (1 - last_fraction) * last step.

  The last row of each run always counts. Returns columns variant, seed, final, last_step.
  """
  if not 0 < last_fraction <= 1:
    raise ConfigError(f"last_fraction must be in (0, 1], got {last_fraction}")
  require_columns(curves, ("variant", "seed", "step", value), "final_score_table")
  df = curves[["variant", "seed", "step", value]].copy()
  df["step"] = pd.to_numeric(df["step"], errors="coerce")
  df[value] = pd.to_numeric(df[value], errors="coerce")
  df = df.dropna()
  if df.empty:
    raise ConfigError(f"final_score_table got no rows with numeric step and {value}")
  rows = []
  for (variant, seed), run in df.groupby(["variant", "seed"], sort=True):
    last = run["step"].max()
    tail = run[run["step"] >= (1 - last_fraction) * last]
    rows.append({"variant": variant, "seed": seed, "final": float(tail[value].mean()), "last_step": float(last)})
  return pd.DataFrame(rows)


def final_score_table(curves: pd.DataFrame, last_fraction: float = 0.1, reps: int = 2000, seed: int = 0,
                      confidence: float = 0.95, value: str = "return") -> pd.DataFrame:
  """Final performance per variant for memory / control benchmarks.

  Each run's final score is the mean of `value` over its last `last_fraction` of steps (step >=
  (1 - last_fraction) * its last step); per variant we report the mean over seeds with a 95% percentile
  bootstrap CI over seeds (rliable's stratified bootstrap with one task).

  Returns columns variant, seeds, mean, std (ddof=1), ci_low, ci_high, last_step (smallest over seeds).
  """
  finals = final_scores(curves, last_fraction=last_fraction, value=value)
  score_dict = {variant: group["final"].to_numpy(float)[:, None] for variant, group in finals.groupby("variant", sort=True)}
  func = lambda x: np.array([np.mean(x)])  # noqa: E731
  points, intervals = interval_estimates(score_dict, func, reps=reps, seed=seed, confidence=confidence)
  rows = []
  for variant, group in finals.groupby("variant", sort=True):
    rows.append({"variant": variant, "seeds": len(group), "mean": float(points[variant][0]),
                 "std": float(group["final"].std(ddof=1)) if len(group) > 1 else math.nan,
                 "ci_low": float(intervals[variant][0, 0]), "ci_high": float(intervals[variant][1, 0]),
                 "last_step": float(group["last_step"].min())})
  return pd.DataFrame(rows, columns=["variant", "seeds", "mean", "std", "ci_low", "ci_high", "last_step"])
